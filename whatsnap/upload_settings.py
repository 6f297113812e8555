"""Where attachments chosen in the composer are stored (conversations/uploads.py), read from the
environment by whatsnap/settings.py: Django's storage API on the local file system under the
var dir by default (UPLOADS_DIR moves it), or an S3-compatible bucket through django-storages
when UPLOADS_S3_BUCKET is set. Files are never listed or served by their storage address:
members read them through the inbox, a backend through a signed link on PUBLIC_BASE_URL."""
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from whatsnap.env import env_int, env_str


def default_storage_setting() -> dict:
    """STORAGES["default"]: the file system (MEDIA_ROOT), or S3 when UPLOADS_S3_BUCKET is set."""
    bucket = env_str("UPLOADS_S3_BUCKET")
    if not bucket:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": bucket,
        "endpoint_url": env_str("UPLOADS_S3_ENDPOINT_URL") or None,  # MinIO, R2, B2…; empty = AWS S3
        "region_name": env_str("UPLOADS_S3_REGION") or None,
        "access_key": env_str("UPLOADS_S3_ACCESS_KEY_ID") or None,  # empty: boto3's own chain (instance role…)
        "secret_key": env_str("UPLOADS_S3_SECRET_ACCESS_KEY") or None,
        "location": env_str("UPLOADS_S3_PREFIX", "whatsnap").strip("/"),
        "addressing_style": env_str("UPLOADS_S3_ADDRESSING_STYLE") or None,  # "path" for most self-hosted stores
        "default_acl": None, "querystring_auth": True, "file_overwrite": False,  # private objects, never replaced
    }}


def upload_settings(var_dir: Path) -> tuple[Path, dict, int, int, int]:
    """(MEDIA_ROOT, STORAGES["default"], UPLOAD_MAX_BYTES, UPLOAD_LINK_MAX_AGE_SECONDS,
    UPLOAD_UNSENT_RETENTION_HOURS)."""
    media_root = Path(env_str("UPLOADS_DIR", str(var_dir / "uploads")))
    max_bytes = env_int("UPLOAD_MAX_BYTES", 25 * 1024 * 1024)  # any one file, whatever the backend allows
    link_age = env_int("UPLOAD_LINK_MAX_AGE_SECONDS", 7 * 24 * 3600)  # a backend's signed link
    retention = env_int("UPLOAD_UNSENT_RETENTION_HOURS", 24)  # chosen, never sent: then removed
    if max_bytes < 1 or link_age < 60 or retention < 1:
        raise ImproperlyConfigured("UPLOAD_MAX_BYTES must be >= 1, UPLOAD_LINK_MAX_AGE_SECONDS >= 60, "
                                   "UPLOAD_UNSENT_RETENTION_HOURS >= 1")
    return media_root, default_storage_setting(), max_bytes, link_age, retention
