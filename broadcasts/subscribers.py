"""How broadcasts react to domain events (registered in BroadcastsConfig.ready): recipients
follow their messages' statuses and the feeder tops up as messages leave; an account that
disconnects pauses the broadcasts it sends and its reconnection resumes them; live pages."""
import logging

from django.db import transaction
from django.utils import timezone

from broadcasts.feeder import broadcast_feed
from broadcasts.live import publish_progress
from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.services import CANCELLED_REASON, broadcast_resume
from broadcasts.states import broadcast_pause
from conversations.models import Message
from conversations.sending import WITHDRAWN, is_withdrawn
from whatsnap import events

logger = logging.getLogger(__name__)

R = BroadcastRecipient.Status
FOLLOWED = {Message.Status.SENT: R.SENT, Message.Status.DELIVERED: R.DELIVERED, Message.Status.READ: R.READ,
            Message.Status.FAILED: R.FAILED}


@events.on("message.status_changed")
def recipient_follows_message(event) -> None:
    """The recipient of a broadcast message takes its status (in the same transaction); when
    the message left the queue, the feeder tops the account's window up after commit."""
    status = FOLLOWED.get(event["status"])
    if status is None:
        return
    row = (BroadcastRecipient.objects.filter(message_id=event["message"].pk)
           .values("pk", "broadcast_id", "status", "broadcast__status").first())
    if row is None:
        return
    reason = (event["error"] or "")[:300] if status == R.FAILED else ""
    fields = {"status": status, "reason": reason, "updated_at": timezone.now()}
    if status == R.FAILED and is_withdrawn(event["message"]):
        # taken back out of the queue (its broadcast was cancelled): never sent, not counted in the day's cap
        why = CANCELLED_REASON if row["broadcast__status"] == Broadcast.Status.CANCELLED else reason[len(WITHDRAWN):]
        fields.update(status=R.SKIPPED, queued_at=None, reason=why)
    BroadcastRecipient.objects.filter(pk=row["pk"]).update(**fields)
    broadcast_id, left_queue, failed = row["broadcast_id"], row["status"] == R.QUEUED, fields["status"] == R.FAILED
    transaction.on_commit(lambda: _after_recipient(broadcast_id, event.location_id, left_queue, failed))


def _after_recipient(broadcast_id: int, location_id: int, left_queue: bool, failed: bool) -> None:
    try:
        if left_queue:
            broadcast_feed(broadcast_id=broadcast_id, check_failures=failed)
        publish_progress(broadcast_id=broadcast_id, location_id=location_id)
    except Exception:  # the send is recorded; the minute sweep feeds the broadcast again
        logger.exception("feeding broadcast %s failed; the sweep will go on", broadcast_id)


@events.on("account.status_changed")
def follow_account(event) -> None:
    """Down: the running broadcasts with recipients waiting on it pause (saying why). Up again:
    those it paused resume by themselves."""
    account = event["account"]
    if account.accepts_replies:
        for broadcast in Broadcast.objects.filter(status=Broadcast.Status.PAUSED, pause_kind=Broadcast.PauseKind.ACCOUNT,
                                                  paused_for_account=account):
            broadcast_resume(broadcast=broadcast)
        return
    using = BroadcastRecipient.objects.filter(account=account, status__in=[R.PENDING, R.QUEUED]).values("broadcast_id")
    for broadcast in Broadcast.objects.filter(status=Broadcast.Status.RUNNING, pk__in=using):
        broadcast_pause(broadcast=broadcast, kind=Broadcast.PauseKind.ACCOUNT, account=account,
                        reason=f"The account {account.name} is not connected ({account.get_status_display()}); "
                               "it goes on by itself when it reconnects.")


@events.on("broadcast.status_changed")
def live_broadcast_status(event) -> None:
    broadcast = event["broadcast"]
    publish_progress(broadcast_id=broadcast.pk, location_id=event.location_id, force=True)
