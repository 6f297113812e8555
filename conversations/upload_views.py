"""Composer uploads over HTTP: store a chosen or dropped file (JSON for composer.js), take one
back, and serve stored files — to members of the file's location only, or to a backend (Twilio
fetching a media URL, a contact opening an SMS link) through its signed link."""
from django.http import FileResponse, Http404, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Account
from accounts.providers.media import ANY_MEDIA, size_label
from accounts.tenancy import get_for_location, location_required
from conversations.models import Conversation, Upload
from conversations.upload_links import upload_from_token
from conversations.uploads import kind_of, limits_for, upload_remove, upload_store
from whatsnap.errors import ApplicationError

# what a stored file may do when opened: nothing but show itself (no script, no form, no frame)
FILE_CSP = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox"


def upload_json(upload: Upload) -> dict:
    return {"id": upload.pk, "filename": upload.filename, "size": upload.size, "size_label": size_label(upload.size),
            "content_type": upload.content_type, "kind": kind_of(upload.content_type),
            "url": reverse("upload-file", args=[upload.pk]), "remove_url": reverse("upload-remove", args=[upload.pk])}


@require_POST
@location_required
def conversation_upload(request, pk):
    """One file from the composer (`file`), checked against what it will be sent through: the
    account chosen (`account`, else the conversation's) or a private note (`mode=note`)."""
    conversation = get_for_location(Conversation.objects.select_related("account"), request.location, pk=pk)
    file = request.FILES.get("file")
    if file is None:
        return JsonResponse({"error": "Choose a file to attach."}, status=400)
    if request.POST.get("mode") == "note":
        limits, label = ANY_MEDIA, "A private note"
    else:
        account = conversation.account
        if request.POST.get("account"):
            account = get_for_location(Account.objects.all(), request.location, pk=request.POST["account"])
        limits, label = limits_for(account), account.name
    try:
        upload = upload_store(conversation=conversation, file=file, user=request.user, limits=limits, label=label)
    except ApplicationError as exc:
        return JsonResponse({"error": exc.message}, status=400)
    return JsonResponse(upload_json(upload), status=201)


@require_POST
@location_required
def upload_delete(request, pk):
    """The composer's ×: a file not sent yet is removed (one already sent stays with its message)."""
    upload = get_for_location(Upload.objects.all(), request.location, pk=pk)
    if not upload_remove(upload):
        return JsonResponse({"error": "It was sent already; it stays with its message."}, status=409)
    return JsonResponse({"removed": upload.pk})


def _file_response(upload: Upload, *, cache: str) -> FileResponse:
    try:
        handle = upload.file.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404 from None
    response = FileResponse(handle, content_type=upload.content_type)
    disposition = "inline" if upload.content_type.startswith(("image/", "audio/", "application/pdf")) else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{upload.filename.replace(chr(34), "")}"'
    response["Content-Length"] = str(upload.size)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    response["Cache-Control"] = cache
    return response


@require_GET
@location_required
def upload_file(request, pk):
    """A stored file, for members of its location (another location's id is a 404)."""
    return _file_response(get_for_location(Upload.objects.all(), request.location, pk=pk), cache="private, max-age=3600")


@require_GET
def upload_public(request, token, name):
    """A stored file through its signed link (no login: the link is the permission). A forged,
    altered or expired token, or a removed file, is a 404 — the same answer for each."""
    upload = upload_from_token(token)
    if upload is None:
        raise Http404
    return _file_response(upload, cache="private, no-store")
