"""Reads for the inbox. Each returns a queryset with everything its page shows joined or
prefetched, so a page runs a fixed number of queries whatever the data size."""
from django.db.models import Count, Q

from contacts.models import Contact, ContactAccount
from contacts.selectors import written_first
from conversations.models import Conversation, ConversationEvent, Message
from whatsnap.params import page_param

VIEWS = (("mine", "Mine"), ("unassigned", "Unassigned"), ("all", "All"))


def unread_by_view(*, location, user) -> dict[str, int]:
    """How many conversations with unread messages each tab holds (one query)."""
    unread = Q(unread_count__gt=0)
    return Conversation.objects.filter(location=location).aggregate(
        mine=Count("id", filter=unread & Q(assignee=user)),
        unassigned=Count("id", filter=unread & Q(assignee__isnull=True)),
        all=Count("id", filter=unread),
    )


def conversations_for(*, location, user, view: str = "all", account_id=None, status: str = "", query: str = "", tag_id=None):
    qs = Conversation.objects.filter(location=location).select_related("contact", "account", "assignee")
    if view == "mine":
        qs = qs.filter(assignee=user)
    elif view == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    if account_id:
        qs = qs.filter(account_id=account_id)
    if status:
        qs = qs.filter(status=status)
    if tag_id:
        qs = qs.filter(contact__contacttag__tag_id=tag_id)
    if query:
        # A set of matching conversation ids (trigram index on PostgreSQL) rather than a
        # correlated EXISTS per conversation row: rare matches stay fast on millions of messages.
        # a message deleted for everyone is not found by its words (agents cannot read them)
        text_match = Message.objects.filter(location=location, text__icontains=query, is_note=False,
                                            deleted_at__isnull=True).values("conversation_id")
        contact_match = Contact.objects.filter(location=location).filter(
            Q(name__icontains=query) | Q(phone__icontains=query)
        ).values("id")
        qs = qs.filter(Q(contact_id__in=contact_match) | Q(pk__in=text_match))
    return qs.order_by("-last_message_at", "-id")


THREAD_PAGE = 100


def thread_page(conversation: Conversation, *, before: int | None = None, limit: int = THREAD_PAGE) -> tuple[list[Message], int | None]:
    """The newest `limit` messages of a thread (older than message `before` when given), oldest
    first, and the cursor for the page before them (None at the start of the thread)."""
    rows = Message.objects.filter(conversation=conversation).select_related("author", "sender_contact")
    if before is not None:
        anchor = Message.objects.filter(conversation=conversation, pk=before).values("sent_at", "id").first()
        if anchor is None:
            return [], None
        rows = rows.filter(Q(sent_at__lt=anchor["sent_at"]) | Q(sent_at=anchor["sent_at"], id__lt=anchor["id"]))
    page = list(rows.order_by("-sent_at", "-id")[: limit + 1])
    more = len(page) > limit
    page = page[:limit][::-1]
    return page, (page[0].pk if more and page else None)


def contact_panel(conversation: Conversation) -> dict:
    contact = conversation.contact
    links = list(ContactAccount.objects.filter(contact=contact).select_related("account").order_by("first_seen_at"))
    others = list(Conversation.objects.filter(contact=contact).exclude(pk=conversation.pk).select_related("account"))
    return {
        "tags": list(contact.tags.order_by("name")),
        "links": links,
        "written_first": written_first([conversation, *others], links),
        "reply_accounts": [l.account for l in links if l.account.accepts_replies],
        "other_conversations": others,
        "history": list(ConversationEvent.objects.filter(conversation=conversation).select_related("actor")[:10]),
    }


class Page:
    """Page-number pagination without COUNT(*): fetch one row more than shown to know
    whether an older page exists (a count over a large inbox costs more than the page)."""

    def __init__(self, queryset, number, size: int):
        self.number = page_param(number)
        start = (self.number - 1) * size
        rows = list(queryset[start:start + size + 1])
        self.object_list = rows[:size]
        self.has_next = len(rows) > size
        self.has_previous = self.number > 1
        self.next_page_number = self.number + 1
        self.previous_page_number = self.number - 1

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous
