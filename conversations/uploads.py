"""Attachments from the composer: images, PDFs and audio chosen or dropped there are stored
through Django's storage API (settings.STORAGES["default"]: the var dir's file system, or an
S3-compatible bucket) as Upload rows, then sent as a message's media through the account.

What a file is comes from its first bytes, never from the browser's word; each backend declares
what one message may carry (Provider.media_limits, accounts/providers/media.py), checked when
the file is uploaded and again when it is sent (the account may have changed in between). A
backend carrying fewer files per message than were chosen gets one message per batch, the text
with the first."""
import os

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.media import ANY_MEDIA, AUDIO, IMAGES, LINKS_ONLY, MediaLimits, size_label
from conversations.actions import note_add
from conversations.models import Conversation, Message, Upload
from conversations.sending import message_send
from whatsnap.errors import ApplicationError
from whatsnap.params import id_param

MAGIC = (  # (offset, bytes, content type) — the file's signature at the start
    (0, b"\xff\xd8\xff", "image/jpeg"), (0, b"\x89PNG\r\n\x1a\n", "image/png"), (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"), (0, b"%PDF-", "application/pdf"), (0, b"OggS", "audio/ogg"), (0, b"ID3", "audio/mpeg"),
    (0, b"#!AMR", "audio/amr"),
)
NOT_MEDIA = "{name} is not an image, PDF or audio file WhatSnap can send (it reads what a file is from its contents)."


def sniff(head: bytes, declared: str = "") -> str:
    """The content type of a file from its first bytes ('' when it is none WhatSnap sends).
    The browser's `declared` type only tells audio from video in containers holding either."""
    for offset, magic, content_type in MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return content_type
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if head[8:12] == b"WEBP" else "audio/wav"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:
            return "audio/aac"  # ADTS
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
            return "audio/mpeg"  # an MPEG audio frame (layer set)
    audio = declared.startswith("audio/")
    if head[4:8] == b"ftyp" and (head[8:11] == b"M4A" or head[8:11] == b"M4B" or audio):
        return "audio/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3" and audio:
        return "audio/webm"
    return ""


def kind_of(content_type: str) -> str:
    return "image" if content_type in IMAGES else "audio" if content_type in AUDIO else "document"


def limits_for(account: Account) -> MediaLimits:
    return get_provider(account.backend).media_limits or LINKS_ONLY


def limits_json(accounts) -> dict:
    """The composer's limits for each account it may send through (checked before uploading)."""
    return {str(a.pk): {**limits_for(a).as_json(), "label": a.name} for a in accounts} | {
        "note": {**ANY_MEDIA.as_json(), "label": "A private note", "max_files": 10, "summary": ANY_MEDIA.summary()}}


def _check(upload_size: int, content_type: str, name: str, limits: MediaLimits, label: str) -> None:
    problem = limits.type_problem(content_type, label=label) or limits.size_problem(upload_size, label=label, name=name)
    if problem:
        raise ApplicationError(problem, field="files")


@transaction.atomic
def upload_store(*, conversation: Conversation, file, user, limits: MediaLimits, label: str,
                 stored: list | None = None) -> Upload:
    """Store one file (a Django UploadedFile) for the conversation's composer, or refuse it
    with the reason (nothing is stored then). `stored` collects the storage names written, for
    a caller whose transaction may still roll back."""
    name = os.path.basename((file.name or "").replace("\\", "/")).strip()[:200] or "file"
    if not file.size:
        raise ApplicationError(f"{name} is empty.", field="files")
    if file.size > settings.UPLOAD_MAX_BYTES:
        raise ApplicationError(f"{name} is {size_label(file.size)}; files up to {size_label(settings.UPLOAD_MAX_BYTES)} "
                               "are taken.", field="files")
    file.seek(0)
    head = file.read(32)
    file.seek(0)
    content_type = sniff(head, getattr(file, "content_type", "") or "")
    if not content_type:
        raise ApplicationError(NOT_MEDIA.format(name=name), field="files")
    _check(file.size, content_type, name, limits, label)
    upload = Upload(location_id=conversation.location_id, conversation=conversation, uploaded_by=user, filename=name,
                    content_type=content_type, size=file.size)
    upload.file.save(name, file, save=False)
    try:
        upload.save()
    except Exception:
        upload.file.storage.delete(upload.file.name)
        raise
    if stored is not None:
        stored.append(upload.file.name)
    return upload


def upload_remove(upload: Upload) -> bool:
    """Take back a file not sent yet (the composer's ×): the row and the stored file."""
    if upload.message_id is not None:
        return False
    name = upload.file.name
    if Upload.objects.filter(pk=upload.pk, message__isnull=True).delete()[0]:
        upload.file.storage.delete(name)
        return True
    return False


def media_item(upload: Upload) -> dict:
    """How a message's media names a stored upload (its link is made when it is sent)."""
    return {"upload": upload.pk, "url": "", "content_type": upload.content_type, "filename": upload.filename,
            "size": upload.size, "kind": kind_of(upload.content_type)}


def pending_uploads(request, conversation: Conversation) -> list[Upload]:
    """The uploads a composer form names (`attachment`), not sent yet, of this conversation."""
    wanted = request.POST.getlist("attachment") if request.method == "POST" else []
    ids = list(dict.fromkeys(id_param(v) for v in wanted))
    if not ids:
        return []
    if None in ids:
        raise ApplicationError("An attachment is not one of this conversation's; choose it again.", field="files")
    rows = {u.pk: u for u in Upload.objects.filter(location_id=conversation.location_id, conversation=conversation,
                                                   message__isnull=True, pk__in=ids)}
    if len(rows) != len(ids):
        raise ApplicationError("An attachment is no longer there (sent already, or removed); choose it again.", field="files")
    return [rows[pk] for pk in ids]


def _attachments(request, conversation, *, limits: MediaLimits, label: str, stored: list) -> list[Upload]:
    """The form's uploads plus files posted with it (a browser without scripts), all checked
    against the limits of what they are sent through."""
    uploads = pending_uploads(request, conversation)
    for upload in uploads:
        _check(upload.size, upload.content_type, upload.filename, limits, label)
    for file in request.FILES.getlist("files"):
        uploads.append(upload_store(conversation=conversation, file=file, user=request.user, limits=limits, label=label,
                                    stored=stored))
    return uploads


def batches(uploads: list[Upload], limits: MediaLimits) -> list[list[Upload]]:
    """The uploads in messages the backend can carry: max_files each, max_total_bytes together."""
    out, current, total = [], [], 0
    for upload in uploads:
        if current and (len(current) >= limits.max_files or total + upload.size > limits.max_total_bytes):
            out.append(current)
            current, total = [], 0
        current.append(upload)
        total += upload.size
    return out + ([current] if current else [])


def _claim(uploads: list[Upload], message: Message) -> None:
    claimed = Upload.objects.filter(pk__in=[u.pk for u in uploads], message__isnull=True).update(message=message)
    if claimed != len(uploads):  # sent by a second click meanwhile: this send is not made at all
        raise ApplicationError("An attachment was just sent from another window; it is not sent twice.", field="files")


def _undoing_stored(send):
    """Files posted with the form are stored before the transaction that sends them commits:
    when it does not, they are removed again (nothing half-written)."""
    def wrapper(request, **kwargs):
        stored = []
        try:
            return send(request, stored=stored, **kwargs)
        except Exception:
            for name in stored:
                default_storage.delete(name)
            raise
    return wrapper


@_undoing_stored
@transaction.atomic
def reply_send(request, *, conversation: Conversation, text: str, author, account: Account | None = None,
               reply_to: Message | None = None, stored: list) -> Message:
    """message_send with the composer's attachments: the first message carries the text and
    the first batch of files; further batches follow as messages of their own. All or none."""
    account = account or conversation.account
    uploads = _attachments(request, conversation, limits=limits_for(account), label=account.name, stored=stored)
    if not uploads:
        return message_send(conversation=conversation, text=text, author=author, account=account, reply_to=reply_to)
    groups = batches(uploads, limits_for(account))
    first = message_send(conversation=conversation, text=text, author=author, account=account, reply_to=reply_to,
                         media=[media_item(u) for u in groups[0]])
    _claim(groups[0], first)
    for group in groups[1:]:
        message = message_send(conversation=first.conversation, text="", author=author, account=account,
                               media=[media_item(u) for u in group])
        _claim(group, message)
    return first


@_undoing_stored
@transaction.atomic
def note_send(request, *, conversation: Conversation, text: str, author, stored: list) -> Message:
    """A private note with the composer's attachments (kept for the team, never sent)."""
    uploads = _attachments(request, conversation, limits=ANY_MEDIA, label="A private note", stored=stored)
    note = note_add(conversation=conversation, text=text, author=author, media=[media_item(u) for u in uploads])
    if uploads:
        _claim(uploads, note)
    return note


def uploads_sweep() -> int:
    """Every minute (registered with whatsnap.tasks): files chosen but never sent, older than
    UPLOAD_UNSENT_RETENTION_HOURS, are removed with their stored file."""
    cutoff = timezone.now() - timezone.timedelta(hours=settings.UPLOAD_UNSENT_RETENTION_HOURS)
    removed = 0
    for upload in Upload.objects.filter(message__isnull=True, created_at__lt=cutoff).order_by("id")[:500]:
        removed += upload_remove(upload)
    return removed
