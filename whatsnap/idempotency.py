"""Idempotent API actions: a POST made with an `Idempotency-Key` answers the first response to
every retry with the same key instead of acting twice (whatsnap.api_base.idempotent is the
HTTP side). Keys are kept IDEMPOTENCY_KEY_TTL per token; the minute sweep forgets older ones."""
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from whatsnap.errors import ApplicationError
from whatsnap.models import IdempotencyKey

IDEMPOTENCY_KEY_TTL = timedelta(hours=24)


def idempotent_call(*, token, key: str, fingerprint: str, produce) -> tuple[int, dict, bool]:
    """Run `produce()` -> (status, body) once per (token, key); returns (status, body, replayed).

    The key row is inserted first, in the transaction of the action: a concurrent twin blocks
    on the unique key until the first commits and then answers its stored response; a
    refused action (ApplicationError) rolls back with its key, so it may be retried."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(token=token, key=key, fingerprint=fingerprint)
        except IntegrityError:
            row = None
        if row is not None:
            status, body = produce()
            row.response_status, row.response_body = status, body
            row.save(update_fields=["response_status", "response_body"])
            return status, body, False
    stored = IdempotencyKey.objects.get(token=token, key=key)
    if stored.fingerprint != fingerprint:
        raise ApplicationError(
            "This Idempotency-Key was used with a different request; use a new key for a new request.",
            code="idempotency_key_reused",
        )
    return stored.response_status, stored.response_body, True


def idempotency_keys_prune() -> int:
    """Every minute (registered with whatsnap.tasks): forget keys older than the TTL."""
    cutoff = timezone.now() - IDEMPOTENCY_KEY_TTL
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
