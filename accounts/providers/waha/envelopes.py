"""What a verified WAHA envelope becomes when WhatSnap does not file it."""
from accounts.providers.base import Unfiled


def unfiled(reason: str, envelope: dict) -> Unfiled:
    """Kept with its reason and the whole envelope; WAHA's event id (`id`, 'evt_…') dedupes
    a redelivery of the same event."""
    event_id = envelope.get("id")
    key = f"waha:{event_id}" if isinstance(event_id, str) and event_id else ""
    return Unfiled(reason=reason, envelope=envelope, key=key)
