"""Reactions an agent makes (the inbox's picker, the API): the account's one reaction on a
message is stored at once (so the thread shows it), the "message.reacted" event goes to GHL,
webhooks and the inbox, and the backend is asked in a task after commit. When the backend
refuses, the reaction is taken back (the earlier one, if any, is restored) and the open thread
is told why."""
import logging
import unicodedata

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.providers import get_provider
from accounts.providers.base import ProviderError
from conversations.amendments import reaction_set
from conversations.models import Message, MessageReaction
from conversations.timeline import ME
from whatsnap.errors import ApplicationError
from whatsnap.live import publish_on_commit
from whatsnap.tasks import enqueue_on_commit

logger = logging.getLogger(__name__)

NOT_AN_EMOJI = "A reaction is one emoji, e.g. 👍."
# What an emoji is made of besides its pictographs (category So): variation selectors, skin
# tones, the zero-width joiner of family/profession sequences and the tag characters of
# subdivision flags. Letters, digits, spaces and invisible controls (bidi overrides) are not.
_JOINERS = {"\u200d", "\u20e3", *map(chr, range(0xFE00, 0xFE10)), *map(chr, range(0x1F3FB, 0x1F400)),
            *map(chr, range(0xE0020, 0xE0080))}


def emoji_problem(emoji: str) -> str:
    """Why `emoji` cannot be a reaction ('' when it can; '' itself removes one)."""
    if not emoji:
        return ""
    if len(emoji) > 16 or len(emoji.encode()) > 32:
        return NOT_AN_EMOJI
    if any(ch not in _JOINERS and unicodedata.category(ch) != "So" for ch in emoji):
        return NOT_AN_EMOJI
    if not any(unicodedata.category(ch) == "So" for ch in emoji):
        return NOT_AN_EMOJI
    return ""


def reaction_refusal(message: Message) -> str:
    """Why the account cannot react to this message ('' when it can)."""
    if message.is_note:
        return "A private note is not on the platform; it cannot get a reaction."
    if message.deleted_at:
        return "This message was deleted for everyone."
    account = message.account
    try:
        provider = get_provider(account.backend)
    except LookupError:
        return "This account's backend is not available."
    if not provider.supports_reactions:
        return f"{provider.label} accounts cannot send reactions."
    if not message.provider_message_id:
        return "This message is not on the platform yet (it has no id there), so it cannot get a reaction."
    if not account.accepts_replies:
        return f"The account {account.name} is not connected ({account.get_status_display()})."
    return ""


@transaction.atomic
def message_react(*, message: Message, emoji: str, author=None) -> bool:
    """Set the account's reaction on `message` to `emoji` ('' removes it); True when it changed.
    The backend is asked after commit (reaction_send)."""
    emoji = (emoji or "").strip()
    problem = emoji_problem(emoji)
    if problem:
        raise ApplicationError(problem, field="emoji")
    refusal = reaction_refusal(message)
    if refusal:
        raise ApplicationError(refusal, code="reaction_refused")
    # the message row serialises the account's reactions to it (two agents clicking at once)
    locked = Message.objects.select_for_update().get(pk=message.pk)
    current = MessageReaction.objects.filter(message=locked, actor_key=ME).first()
    previous, previous_author_id = (current.emoji, current.author_id) if current else ("", None)
    if not reaction_set(message=message, actor_key=ME, emoji=emoji, at=timezone.now(), author=author):
        return False
    enqueue_on_commit(reaction_send, message.pk, emoji, previous, previous_author_id)
    return True


def reaction_send(message_id: int, emoji: str, previous: str, previous_author_id: int | None = None) -> str:
    """The task: hand the account's reaction to the backend, outside any transaction."""
    message = Message.objects.select_related("account", "conversation__contact").filter(pk=message_id).first()
    if message is None:
        return "gone"
    account = message.account
    try:
        get_provider(account.backend).react(
            account, to=message.conversation.contact.phone, target_id=message.provider_message_id,
            target_from_me=message.direction == Message.Direction.OUTBOUND, emoji=emoji)
    except ProviderError as exc:
        logger.warning("reaction %r on message %s not sent: %s", emoji, message_id, exc)
        reaction_take_back(message=message, emoji=emoji, previous=previous, previous_author_id=previous_author_id, reason=str(exc))
        return "failed"
    return "sent"


@transaction.atomic
def reaction_take_back(*, message: Message, emoji: str, previous: str, previous_author_id: int | None, reason: str) -> bool:
    """The backend refused: the thread goes back to what the platform shows (the earlier
    reaction, or none) and the open thread says why. Nothing is taken back when the reaction
    was changed again meanwhile (that change has its own send)."""
    locked = Message.objects.select_for_update().get(pk=message.pk)
    current = MessageReaction.objects.filter(message=locked, actor_key=ME).first()
    if (current.emoji if current else "") != emoji:
        return False
    author = get_user_model().objects.filter(pk=previous_author_id).first() if previous_author_id else None
    reaction_set(message=message, actor_key=ME, emoji=previous, at=timezone.now(), author=author)
    what = f"The reaction {emoji} was not sent" if emoji else f"The reaction {previous} was not removed"
    publish_on_commit(location_id=message.location_id, event="message.reaction_failed",
                      topics=[f"conversation:{message.conversation_id}"],
                      data={"conversation": message.conversation_id, "message": message.pk, "error": f"{what}: {reason}"[:300]})
    return True
