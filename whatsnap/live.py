"""Live events for browsers, published only after the transaction that caused them commits.

Every open page of a location listens on the group ``location.<id>``. An event names
*topics* ("account:7", "accounts", "conversation:12", "inbox"); the page refreshes the parts
that follow those topics (each part fetches its own HTML, rendered for that user).

With Redis the channel layer crosses processes by itself. In the embedded mode the channel
layer is in-memory, i.e. private to one process, so events are written to the LiveEvent table
and every web process relays new rows to its own in-memory layer (``relay_forever``)."""
import asyncio
import logging

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from whatsnap.models import LiveEvent

logger = logging.getLogger(__name__)

RELAY_POLL_SECONDS = 0.25
RELAY_KEEP_SECONDS = 300


def location_group(location_id: int) -> str:
    return f"location.{location_id}"


def publish_on_commit(*, location_id: int, event: str, topics: list[str], data: dict | None = None) -> None:
    publish_many_on_commit(location_id=location_id, items=[(event, topics, data)])


def publish_many_on_commit(*, location_id: int, items: list[tuple[str, list[str], dict | None]]) -> None:
    """Several live events of one location, (event, topics, data) each, in order: one insert
    in the embedded mode, one callback after the commit with Redis."""
    group = location_group(location_id)
    payloads = [{"event": event, "topics": topics, "data": data or {}} for event, topics, data in items]
    if not payloads:
        return
    if settings.LIVE_EVENTS_VIA_DATABASE:
        # Written inside the caller's transaction: visible to the relay only once committed.
        LiveEvent.objects.bulk_create([LiveEvent(group=group, payload=payload) for payload in payloads])
        return
    transaction.on_commit(lambda: [_send(group, payload) for payload in payloads])


def _send(group: str, payload: dict) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(group, {"type": "live.event", "payload": payload})
    except Exception:  # a live update is best effort; the data is already committed
        logger.warning("live event to %s not delivered", group, exc_info=True)


_relay_task: asyncio.Task | None = None


def ensure_relay_running() -> None:
    """Start the database relay once per web process (embedded mode only)."""
    global _relay_task
    if not settings.LIVE_EVENTS_VIA_DATABASE:
        return
    if _relay_task is None or _relay_task.done():
        _relay_task = asyncio.get_running_loop().create_task(relay_forever())


def _fetch_after(last_id: int | None):
    if last_id is None:
        newest = LiveEvent.objects.order_by("-id").values_list("id", flat=True).first()
        return newest or 0, []
    rows = list(LiveEvent.objects.filter(id__gt=last_id).order_by("id").values_list("id", "group", "payload")[:500])
    if rows and rows[-1][0] % 200 == 0:
        LiveEvent.objects.filter(created_at__lt=timezone.now() - timezone.timedelta(seconds=RELAY_KEEP_SECONDS)).delete()
    return (rows[-1][0] if rows else last_id), rows


async def relay_forever() -> None:
    layer = get_channel_layer()
    last_id = None
    while True:
        try:
            last_id, rows = await sync_to_async(_fetch_after, thread_sensitive=False)(last_id)
            for _id, group, payload in rows:
                await layer.group_send(group, {"type": "live.event", "payload": payload})
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning("live relay poll failed; retrying", exc_info=True)
        await asyncio.sleep(RELAY_POLL_SECONDS)
