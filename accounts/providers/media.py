"""What each backend can send as media (MediaLimits, declared on every Provider), and the file
of an attachment for a backend that is handed the file itself.

Attachments a person chose in the composer are stored through Django's storage API
(conversations/uploads.py); a message's media item for one carries `storage_name` when it is
handed to the backend, besides `url` (a signed public link for backends that are given links)."""
from dataclasses import dataclass

from django.core.files.storage import default_storage

from accounts.providers import transport
from accounts.providers.base import ProviderError

MB = 1024 * 1024
IMAGES = ("image/jpeg", "image/png", "image/gif", "image/webp")
DOCUMENTS = ("application/pdf",)
AUDIO = ("audio/mpeg", "audio/ogg", "audio/mp4", "audio/aac", "audio/amr", "audio/wav", "audio/webm")
TYPE_NAMES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WebP", "application/pdf": "PDF",
              "audio/mpeg": "MP3", "audio/ogg": "OGG", "audio/mp4": "M4A", "audio/aac": "AAC", "audio/amr": "AMR",
              "audio/wav": "WAV", "audio/webm": "WebM audio"}


@dataclass(frozen=True)
class MediaLimits:
    """What one message through a backend may carry. max_files: files per message (more are sent
    as one message each, the text with the first); max_file_bytes: each; max_total_bytes: all of
    one message together; types: content types it takes (as sniffed from the file, not as the
    browser named them); as_links: the backend carries text only, so the contact gets a signed
    link to each file (PUBLIC_BASE_URL must be reachable from the internet)."""
    max_files: int
    max_file_bytes: int
    max_total_bytes: int
    types: tuple[str, ...]
    as_links: bool = False
    note: str = ""  # said in the composer (e.g. how the platform shows the files)

    def type_problem(self, content_type: str, *, label: str) -> str:
        if content_type in self.types:
            return ""
        names = ", ".join(dict.fromkeys(TYPE_NAMES.get(t, t) for t in self.types))
        return f"{label} cannot send {TYPE_NAMES.get(content_type, content_type or 'this kind of file')} files; it sends {names}."

    def size_problem(self, size: int, *, label: str, name: str) -> str:
        if size > self.max_file_bytes:
            return f"{name} is {size_label(size)}; {label} sends files up to {size_label(self.max_file_bytes)}."
        return ""

    def summary(self) -> str:
        kinds = [k for k, group in (("images", IMAGES), ("PDFs", DOCUMENTS), ("audio", AUDIO)) if set(group) & set(self.types)]
        per = "one file per message" if self.max_files == 1 else f"up to {self.max_files} files per message"
        text = f"{', '.join(kinds) or 'no files'} · up to {size_label(self.max_file_bytes)} each · {per}"
        if self.max_total_bytes < self.max_files * self.max_file_bytes:
            text += f", {size_label(self.max_total_bytes)} together"
        if self.as_links:
            text += " · sent as links"
        return text + (f" · {self.note}" if self.note else "")

    def as_json(self) -> dict:
        return {"max_files": self.max_files, "max_file_bytes": self.max_file_bytes, "max_total_bytes": self.max_total_bytes,
                "types": list(self.types), "as_links": self.as_links, "summary": self.summary()}


def size_label(size: int) -> str:
    if size >= MB:
        return f"{size / MB:.1f}".rstrip("0").rstrip(".") + " MB"
    if size >= 1024:
        return f"{round(size / 1024)} KB"
    return f"{size} bytes"


# The whole set, for a backend that takes any of them (the sandbox) and private notes.
ANY_MEDIA = MediaLimits(max_files=10, max_file_bytes=16 * MB, max_total_bytes=50 * MB, types=IMAGES + DOCUMENTS + AUDIO)
# Backends that send text only (SMS from a phone, iMessage through BlueBubbles' text API).
LINKS_ONLY = MediaLimits(max_files=10, max_file_bytes=16 * MB, max_total_bytes=50 * MB, types=IMAGES + DOCUMENTS + AUDIO,
                         as_links=True, note="the contact gets a link to each file")


def media_bytes(item: dict, *, max_bytes: int = 16 * MB) -> tuple[bytes, str]:
    """(body, content type) of an attachment for a backend handed the file itself: a stored
    upload is read from the storage (never fetched back over HTTP, so it works whatever
    PUBLIC_BASE_URL is), any other link is downloaded through the guard."""
    name = item.get("storage_name") or ""
    if not name:
        return transport.media_download(item["url"])
    try:
        with default_storage.open(name, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise ProviderError("Not sent: the attachment is no longer stored.", transient=False) from None
    except OSError as exc:
        raise ProviderError(f"The attachment could not be read from storage: {exc}") from None
    if len(data) > max_bytes:
        raise ProviderError(f"Not sent: the attachment is larger than {size_label(max_bytes)}.", transient=False)
    return data, str(item.get("content_type") or "application/octet-stream")
