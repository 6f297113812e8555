"""Signed links to stored composer uploads, and a queued message's media as its backend gets it.

A backend that is given links (Twilio fetches each media URL; SMS and iMessage carry them in
the text) gets PUBLIC_BASE_URL + /media/<token>/<name>: the token is signed with SECRET_KEY
(django.core.signing, salted, timestamped), names one upload, and is accepted for
UPLOAD_LINK_MAX_AGE_SECONDS. Nothing lists uploads; a removed upload's link answers 404."""
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.urls import reverse

from conversations.models import Upload

SALT = "whatsnap.conversations.upload-link"


def upload_token(upload: Upload) -> str:
    return signing.dumps(upload.pk, salt=SALT, compress=False)


def upload_from_token(token: str) -> Upload | None:
    """The upload a link names, or None (a forged, altered or expired token, or gone)."""
    try:
        pk = signing.loads(token, salt=SALT, max_age=settings.UPLOAD_LINK_MAX_AGE_SECONDS)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    return Upload.objects.filter(pk=pk).first() if isinstance(pk, int) else None


def signed_url(upload: Upload) -> str:
    path = reverse("upload-public", kwargs={"token": upload_token(upload), "name": quote(upload.filename, safe="")})
    return settings.PUBLIC_BASE_URL + path


def backend_media(media) -> list | None:
    """A message's media as provider.send() takes it: a stored upload gets its signed link
    (`url`) and its storage name (`storage_name`, read by backends handed the file itself);
    an upload removed since is named by a storage name that does not exist (the send fails
    with that said). Other items (links from the API or GHL) are as they were."""
    media = list(media or ())
    ids = [item["upload"] for item in media if isinstance(item.get("upload"), int)]
    if not ids:
        return media or None
    rows = {u.pk: u for u in Upload.objects.filter(pk__in=ids)}
    out = []
    for item in media:
        upload = rows.get(item.get("upload"))
        if upload is not None:
            item = {**item, "url": signed_url(upload), "storage_name": upload.file.name}
        elif "upload" in item:
            item = {**item, "storage_name": f"uploads/removed/{item['upload']}"}
        out.append(item)
    return out
