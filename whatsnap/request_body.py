"""Bounded request bodies for the webhook endpoints: read at most one byte past the limit,
whatever Content-Length says (it can be absent when chunked, or wrong). The global
DATA_UPLOAD_MAX_MEMORY_SIZE stays Django's default for pages and forms; the one endpoint that
takes larger bodies (WhatsApp gateways post media inline) sets its own limit here."""


def body_within(request, limit: int) -> bool:
    """True when the body is at most `limit` bytes; it is then `request.body`. False
    without reading more than limit + 1 bytes."""
    if hasattr(request, "_body"):
        return len(request._body) <= limit
    declared = str(request.META.get("CONTENT_LENGTH") or "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        return False
    data = request.read(limit + 1)
    if len(data) > limit:
        return False
    request._body = data  # what request.body and request.POST then read
    return True
