"""Secrets at rest: Fernet (AES-128-CBC + HMAC) keyed from settings.ENCRYPTION_KEYS.

Each configured key is stretched with SHA-256 so any sufficiently long string works; the
first key encrypts and every key decrypts (rotation: prepend the new key, re-save rows)."""
import base64
import hashlib
import json
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest())) for k in keys]
    )


def encrypt(plaintext: str) -> str:
    return _fernet(tuple(settings.ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _fernet(tuple(settings.ENCRYPTION_KEYS)).decrypt(token.encode()).decode()


class EncryptedJSONField(models.TextField):
    """A dict stored as one Fernet token. Never rendered in admin or logs by its owners."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return {}
        try:
            return json.loads(decrypt(value))
        except InvalidToken:
            raise ValueError(
                f"{self.model.__name__}.{self.name} cannot be decrypted: ENCRYPTION_KEY changed?"
            ) from None

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        return self.from_db_value(value, None, None) if value else {}

    def get_prep_value(self, value):
        if not value:
            return ""
        return encrypt(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj):
        return "<encrypted>"


class EncryptedTextField(models.TextField):
    """A secret string stored as one Fernet token (webhook signing secrets): readable by the
    code that signs or verifies with it, useless in a copy of the database. Nothing can look
    a row up by its value (each encryption differs), so rows are found by their id first."""

    def from_db_value(self, value, expression, connection):
        if not value:
            return ""
        try:
            return decrypt(value)
        except InvalidToken:
            raise ValueError(
                f"{self.model.__name__}.{self.name} cannot be decrypted: ENCRYPTION_KEY changed?"
            ) from None

    def get_prep_value(self, value):
        return encrypt(value) if value else ""

    def value_to_string(self, obj):
        return "<encrypted>"
