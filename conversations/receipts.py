"""Read receipts: when an agent opens a conversation, the contact's messages are marked read
on the platform (blue ticks), through the backends that can, for accounts that want it
(Account.send_read_receipts, on by default).

Each message is marked once: the conversation keeps the last inbound message marked
(read_receipt_through), and a task claims the newer ones by moving that mark with a
conditional update before it asks the backend, outside any transaction. A failure is logged,
never shown to the agent (the conversation is read in WhatSnap either way); a transient one
gives the messages back, so the next opening tries again."""
import logging

from accounts.providers import get_provider
from accounts.providers.base import ProviderError
from conversations.models import Conversation, Message
from whatsnap.live import publish_on_commit
from whatsnap.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

# The newest this many messages are named in one receipt; older unmarked ones (a long
# history imported on connect) are passed over: the platform shows the chat read up to the
# newest anyway.
RECEIPT_BATCH = 100


def _wanted(account) -> bool:
    if not account.send_read_receipts or not account.accepts_replies:
        return False
    try:
        return get_provider(account.backend).supports_read_receipts
    except LookupError:
        return False


def _unmarked(conversation_id: int, through: int):
    return Message.objects.filter(conversation_id=conversation_id, direction=Message.Direction.INBOUND, is_note=False,
                                  pk__gt=through)


def read_receipts_queue(*, conversation: Conversation) -> bool:
    """Called where opening a conversation marks it read: queue the receipt (after commit)
    when the account sends them and a message of the contact is not marked yet."""
    if not _wanted(conversation.account):
        return False
    if not _unmarked(conversation.pk, conversation.read_receipt_through).exists():
        return False
    enqueue_on_commit(read_receipts_send, conversation.pk)
    return True


def read_receipts_send(conversation_id: int) -> int:
    """The task: claim the contact's unmarked messages and tell the backend; returns how many
    message ids went out."""
    conversation = Conversation.objects.select_related("account", "contact").filter(pk=conversation_id).first()
    if conversation is None or not _wanted(conversation.account):
        return 0
    through = conversation.read_receipt_through
    rows = list(_unmarked(conversation_id, through).order_by("-id").values_list("id", "provider_message_id", "deleted_at")
                [:RECEIPT_BATCH])
    if not rows:
        return 0
    newest = rows[0][0]
    claimed = Conversation.objects.filter(pk=conversation_id, read_receipt_through=through).update(read_receipt_through=newest)
    if not claimed:
        return 0  # another task took them
    # a deleted message, or one without a platform id, is not marked
    ids = [provider_id for _pk, provider_id, deleted_at in reversed(rows) if provider_id and deleted_at is None]
    if not ids:
        return 0
    account = conversation.account
    try:
        get_provider(account.backend).mark_read(account, to=conversation.contact.phone, provider_ids=ids)
    except ProviderError as exc:
        logger.warning("read receipt for %s message(s) of conversation %s not sent: %s", len(ids), conversation_id, exc)
        if exc.transient:  # give them back: the next opening tries again
            Conversation.objects.filter(pk=conversation_id, read_receipt_through=newest).update(read_receipt_through=through)
        return 0
    if account.is_sandbox:  # the simulated phone shows the blue ticks
        publish_on_commit(location_id=conversation.location_id, event="conversation.read_receipt",
                          topics=[f"sandbox:{account.pk}"], data={"conversation": conversation_id})
    return len(ids)
