"""What a thread shows besides the messages' own rows: reactions as chips, the text a reply
quotes, earlier texts of edited messages, and the group's system items (members joined or
left, renamed) in time order among the messages. Used by the inbox and the sandbox phone; a
page of a thread costs the same few queries however many reactions or events it holds."""
from django.db.models import Prefetch, prefetch_related_objects
from django.utils.dateparse import parse_datetime

from accounts.models import Account
from accounts.providers import get_provider
from contacts.models import Contact
from conversations import selectors
from conversations.models import Conversation, ConversationEvent, Message, MessageReaction

# The inbox's reaction picker (any single emoji is accepted through the API)
COMMON_REACTIONS = ("👍", "❤️", "😂", "😮", "😢", "🙏")
ME = "me"  # MessageReaction.actor_key of the account's own side (an agent, or the phone itself)


def device_label(account: Account) -> str:
    """How a message typed on the account's own device is marked."""
    return "from the Mac" if account.kind == Account.Kind.IMESSAGE else "from the phone"


def can_react(account: Account) -> bool:
    try:
        return get_provider(account.backend).supports_reactions
    except LookupError:
        return False


def decorate(messages: list[Message], account: Account) -> list[Message]:
    """Attach to each message what its bubble shows: `reaction_chips` [{emoji, names, mine}],
    `my_reaction` (the account's emoji or ''), `quote` (the quoted text) and `earlier_texts`
    [(text, until)] of an edited message. At most two queries for the whole page."""
    prefetch_related_objects(messages, Prefetch("reactions", queryset=MessageReaction.objects.select_related("contact", "author")),
                             "reply_to")
    for message in messages:
        _reactions(message, list(message.reactions.all()), account.name)
        original = message.reply_to
        message.quote = message.quoted_text or (original.text if original and not original.deleted_at else "")
        message.earlier_texts = [(e.get("text", ""), parse_datetime(e.get("until") or "")) for e in message.edits or ()]
    return messages


def _reactions(message: Message, reactions: list[MessageReaction], account_name: str) -> None:
    """The account's own reaction is named by the agent who made it, else by the account (made
    on its phone, or through the API without a user)."""
    chips: dict[str, dict] = {}
    message.my_reaction = ""
    for reaction in reactions:
        if reaction.actor_key == ME:
            message.my_reaction = reaction.emoji
            name = reaction.author.get_username() if reaction.author else account_name
        else:
            name = reaction.contact.display_name if reaction.contact else "contact"
        chip = chips.setdefault(reaction.emoji, {"emoji": reaction.emoji, "names": [], "mine": False})
        chip["names"].append(name)
        chip["mine"] |= reaction.actor_key == ME
    message.reaction_chips = list(chips.values())


def chat_events(conversation: Conversation, page: list[Message], *, before: int | None, older_cursor) -> list[ConversationEvent]:
    """The group system items that fall among this page's messages: from its first message
    (or the start of the thread when it is the first page) up to the message it is older than
    (or now when it is the newest page)."""
    if conversation.contact.kind != Contact.Kind.GROUP:
        return []  # only group chats have system items
    rows = ConversationEvent.objects.filter(conversation=conversation, kind=ConversationEvent.Kind.CHAT)
    if older_cursor is not None and page:
        rows = rows.filter(at__gte=page[0].sent_at)
    if before is not None:
        anchor = Message.objects.filter(conversation=conversation, pk=before).values_list("sent_at", flat=True).first()
        if anchor is None:
            return []
        rows = rows.filter(at__lt=anchor)
    found = list(rows.order_by("at", "id")[:200])
    for event in found:
        event.is_chat_event = True
    return found


def in_time_order(page: list[Message], events: list[ConversationEvent]) -> list:
    """Messages and system items by time (an item at the same moment as a message follows it)."""
    return sorted([*page, *events], key=lambda item: item.at if isinstance(item, ConversationEvent) else item.sent_at)


def thread(conversation: Conversation, *, before: int | None = None, admin: bool = False) -> dict:
    """The template context of a page of a thread (the newest, or the one older than `before`)."""
    page, cursor = selectors.thread_page(conversation, before=before)
    decorate(page, conversation.account)
    items = in_time_order(page, chat_events(conversation, page, before=before, older_cursor=cursor))
    return {
        "thread_messages": page,
        "thread_items": items,
        "older_cursor": cursor,
        "can_react": can_react(conversation.account),
        "reaction_choices": COMMON_REACTIONS,
        "device_label": device_label(conversation.account),
        "admin_view": admin,
    }
