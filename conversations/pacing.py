"""The send queue: messages leave one account in order, at most `send_per_minute` a minute with
random jitter, however many agents reply at once. (WhatsApp's typing delay is shown by the
gateway itself before it sends: see accounts/providers/evolution/provider.py.)

One drainer per account at a time holds a lease (a conditional update on the account row);
it sends the oldest queued message when the account's next slot has come, books the next
slot, and goes on. The queue is the messages table itself (status queued, in id order), so it
is visible and survives restarts; a lost drainer's lease expires and the sweeper restarts it.

message_deliver() hands one claimed message to its backend, outside any transaction; a backend
that is down puts the message back at the head of the queue and the account waits with backoff."""
import logging
import random
import time

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import ProviderError
from accounts.services import account_set_status
from conversations.models import Message
from conversations.statuses import message_status_advance, message_status_changed
from conversations.upload_links import backend_media
from whatsnap import guarded_fetch
from whatsnap.tasks import run_now_or_at

logger = logging.getLogger(__name__)

MAX_INLINE_WAIT = 5.0  # longer waits hand over to a scheduled drain instead of sleeping
# The longest one backend send may take: BlueBubbles 30 s read + 5 s connect; Evolution
# 15 s + the typing delay (<= 15 s, shown by the gateway before it sends) + 5 s connect.
SEND_ALLOWANCE = 40.0
# Renewed before each send, so it covers one inline wait + one send; a killed drainer's
# lease frees itself within a minute.
LEASE_SECONDS = MAX_INLINE_WAIT + SEND_ALLOWANCE + 10

clock = timezone.now  # tests replace these two
sleep = time.sleep


def interval_seconds(account: Account) -> float:
    base = 60.0 / max(account.send_per_minute, 1)
    jitter = random.uniform(0, account.send_jitter_seconds) if account.send_jitter_seconds else 0.0
    return base + jitter


# A send that starts at most this share of an interval after its booked slot (the sleep's
# overshoot, a slow query) books the next slot from its own slot, not from now: the pace holds
# over a long run instead of losing those milliseconds at every send, and no two sends are ever
# closer than 90 % of the interval. Later than that, the next slot counts from now (no catch-up burst).
SLOT_TOLERANCE = 0.1


def next_slot(account: Account, now):
    step = timezone.timedelta(seconds=interval_seconds(account))
    booked = account.next_send_at
    if booked is not None and timezone.timedelta(0) <= now - booked <= timezone.timedelta(
            seconds=SLOT_TOLERANCE * 60.0 / max(account.send_per_minute, 1)):
        return booked + step
    return now + step


def queue_of(account: Account):
    """Exactly the rows message_deliver can claim (its conditional update's filter), so the
    drainer never picks a row it would skip."""
    return Message.objects.filter(
        account=account, status=Message.Status.QUEUED, is_note=False,
        direction=Message.Direction.OUTBOUND, provider_message_id="",
    ).order_by("id")


def _take_lease(account_id: int) -> bool:
    now = clock()
    return bool(
        Account.objects.filter(pk=account_id)
        .filter(Q(drain_lease_until__isnull=True) | Q(drain_lease_until__lt=now))
        .update(drain_lease_until=now + timezone.timedelta(seconds=LEASE_SECONDS))
    )


def _release_lease(account_id: int) -> None:
    Account.objects.filter(pk=account_id).update(drain_lease_until=None)


def drain_account(account_id: int) -> int:
    """The task: drain one account's queue."""
    return account_drain(account_id=account_id)


def enqueue_account_drain(account_id: int, at=None) -> None:
    """Drain now, or at `at`. Not now while a drainer holds the account's lease: it takes what
    was queued meanwhile itself (it looks at the queue again after releasing the lease), so a
    broadcast's messages do not each cost a task that would only find the lease taken."""
    if at is None and Account.objects.filter(pk=account_id, drain_lease_until__gt=clock()).exists():
        return
    run_now_or_at(drain_account, account_id, name=f"drain-account-{account_id}", at=at)


def account_drain(*, account_id: int, budget_seconds: float = 50.0) -> int:
    """Send what is due for one account; returns how many were sent. Re-queues itself when
    work remains (now or at the next slot).

    A send starts only if its wait and the longest send still fit in the budget, and the
    budget stays under the task timeout (60 s): the worker is never killed in the middle of
    a send, which would leave the message `sending` (see messages_fail_stuck)."""
    if not _take_lease(account_id):
        return 0
    started, sent, next_at, more, skipped = time.monotonic(), 0, None, False, set()
    try:
        while True:
            account = Account.objects.get(pk=account_id)
            # a row another worker claimed first is passed over, never picked again in a loop
            message = queue_of(account).exclude(pk__in=skipped).first()
            if message is None:
                break
            wait = (account.next_send_at - clock()).total_seconds() if account.next_send_at else 0.0
            if wait > MAX_INLINE_WAIT:
                next_at = account.next_send_at
                break
            if time.monotonic() - started + max(wait, 0.0) + SEND_ALLOWANCE > budget_seconds:
                more = True  # a fresh task goes on at once
                break
            Account.objects.filter(pk=account_id).update(drain_lease_until=clock() + timezone.timedelta(seconds=LEASE_SECONDS))
            if wait > 0:
                sleep(wait)
            with transaction.atomic():
                Account.objects.filter(pk=account_id).update(next_send_at=next_slot(account, clock()))
            if message_deliver(message_id=message.pk) == "skipped":
                skipped.add(message.pk)
                continue
            sent += 1
    finally:
        _release_lease(account_id)
    if next_at is not None:
        enqueue_account_drain(account_id, at=next_at)
    elif more or queue_of(Account(pk=account_id)).exists():
        enqueue_account_drain(account_id)
    return sent


# --- one send --------------------------------------------------------------------------------
def _media_address_problem(media) -> str:
    """Attachment links leave with a send: as links in the text (SMS, a caption's extra
    files), to Twilio, or fetched by us for the WhatsApp gateways. None may point inside our
    network (MEDIA_ALLOW_PRIVATE_URLS allows it). The reason for the first such link, else ""."""
    for item in media or ():
        url = str(item.get("url") or "")
        if url.startswith(("http://", "https://")):
            problem = guarded_fetch.address_problem(url, purpose=guarded_fetch.MEDIA)
            if problem:
                return problem
    return ""


def message_deliver(*, message_id: int) -> str:
    """Hand a queued message to its backend exactly once. The claim (queued -> sending) is a
    conditional update, so two workers never both send; the provider is given our message id
    as idempotency key so a retry after a crash does not double-send where it supports it."""
    claimed = Message.objects.filter(pk=message_id, status=Message.Status.QUEUED, provider_message_id="").update(
        status=Message.Status.SENDING, status_changed_at=timezone.now()
    )
    if not claimed:
        return "skipped"
    message = Message.objects.select_related("account", "conversation__contact").get(pk=message_id)
    provider = get_provider(message.account.backend)
    refused = _media_address_problem(message.media)
    if refused:
        _send_failed(message, f"Not sent: {refused}")
        return "failed"
    try:
        result = provider.send(
            message.account,
            to=message.conversation.contact.phone,
            text=message.text,
            media=backend_media(message.media),  # stored uploads: their signed link and storage name
            idempotency_key=f"wsm-{message.pk}",
            reply_to=message.reply_to_provider_id,
        )
    except ProviderError as exc:
        repeatable = not exc.ambiguous or provider.idempotent_sends  # a lost answer is safe to retry
        if exc.transient and repeatable and message.send_attempts + 1 < MAX_SEND_ATTEMPTS:
            return _send_retry_later(message, exc)
        reason = str(exc)
        if exc.ambiguous and not provider.idempotent_sends:
            reason = f"{exc} — no answer in time: it may have been sent; retry only if the recipient did not get it."
        _send_failed(message, reason)
        logger.warning("send of message %s failed: %s", message.pk, exc)
        return "failed"
    if message.account.status == Account.Status.ERROR and message.account.last_error.startswith(Account.SEND_FAILING):
        account_set_status(account=message.account, status=Account.Status.CONNECTED, reason="sending works again")
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message.pk)
        message.provider_message_id = result.provider_id
        message.provider_id_core = provider.message_id_core(result.provider_id)[:64]
        message.save(update_fields=["provider_message_id", "provider_id_core"])
        message_status_advance(message=message, status=result.status if result.status != "queued" else "sent")
    return message.status


def _send_failed(message: Message, reason: str) -> bool:
    """sending -> failed with the reason, told to the inbox, webhooks and GHL."""
    with transaction.atomic():
        changed = Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
            status=Message.Status.FAILED, error=reason[:300], status_changed_at=timezone.now()
        )
        if not changed:
            return False
        message.status, message.error = Message.Status.FAILED, reason[:300]
        message_status_changed(message)
    return True


# Longer than a drain task may run (its budget < the 60 s task timeout) plus django-q's
# retry window: a message still `sending` after this lost its worker mid-send.
STUCK_SENDING_SECONDS = 180


def messages_fail_stuck(limit: int = 500) -> int:
    """Sends whose worker died between claiming the message and recording the backend's
    answer. Whether the backend took it is unknown, so it is never re-sent by itself: it
    fails with that said, and the agent can retry."""
    cutoff = timezone.now() - timezone.timedelta(seconds=STUCK_SENDING_SECONDS)
    stuck = Message.objects.filter(status=Message.Status.SENDING, provider_message_id="", status_changed_at__lt=cutoff)
    n = 0
    for message in stuck.order_by("id")[:limit]:
        if _send_failed(message, "the worker stopped while handing it to the backend: it may have been sent; "
                                 "retry only if the recipient did not get it."):
            logger.warning("message %s was stuck in sending: marked failed", message.pk)
            n += 1
    return n


MAX_SEND_ATTEMPTS = 6
RETRY_BASE_SECONDS = 15.0
RETRY_MAX_SECONDS = 600.0


def _send_retry_later(message: Message, exc: ProviderError) -> str:
    """The backend is down or overloaded (it did not take the message): the message goes back
    to the head of its account's queue and the account waits with exponential backoff
    (15 s, 30 s, ... 10 min); after MAX_SEND_ATTEMPTS it fails with the reason."""
    attempts = message.send_attempts + 1
    delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    with transaction.atomic():
        Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
            status=Message.Status.QUEUED, send_attempts=attempts,
            error=f"attempt {attempts} of {MAX_SEND_ATTEMPTS} failed: {exc}"[:300], status_changed_at=timezone.now(),
        )
        Account.objects.filter(pk=message.account_id).update(next_send_at=clock() + timezone.timedelta(seconds=delay))
        account = Account.objects.get(pk=message.account_id)
        if account.accepts_replies:  # connected (or failing sends already): not a connect error
            # shown as the account's status (live, with the reason); replies still queue
            account_set_status(account=account, status=Account.Status.ERROR, reason=f"{Account.SEND_FAILING}{exc}"[:500])
    logger.warning("send of message %s failed (attempt %s), retrying in %.0f s: %s", message.pk, attempts, delay, exc)
    return "retry"


def queue_eta(account: Account, limit: int = 50) -> list[tuple[Message, object]]:
    """The queued messages of an account with the time each is expected to leave (the pace
    plus the mean jitter and, on WhatsApp, the typing delay)."""
    at = max(account.next_send_at or clock(), clock())
    seconds = 60.0 / max(account.send_per_minute, 1) + account.send_jitter_seconds / 2
    if account.kind == Account.Kind.WHATSAPP:
        seconds += account.typing_delay_seconds
    step = timezone.timedelta(seconds=seconds)
    rows = []
    for message in queue_of(account).select_related("conversation__contact")[:limit]:
        rows.append((message, at))
        at += step
    return rows
