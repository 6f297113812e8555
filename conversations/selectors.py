"""Reads for the inbox. Each returns a queryset with everything its page shows joined or
prefetched, so a page runs a fixed number of queries whatever the data size."""
from django.db.models import Exists, OuterRef, Prefetch, Q

from contacts.models import ContactAccount, Tag
from conversations.models import CannedResponse, Conversation, ConversationEvent, Message

VIEWS = (("mine", "Mine"), ("unassigned", "Unassigned"), ("all", "All"))


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
        text_match = Message.objects.filter(conversation=OuterRef("pk"), text__icontains=query, is_note=False)
        qs = qs.filter(
            Q(contact__name__icontains=query) | Q(contact__phone__icontains=query) | Q(Exists(text_match))
        )
    return qs.order_by("-last_message_at", "-id")


def messages_of(conversation: Conversation, limit: int = 100) -> list[Message]:
    rows = (
        Message.objects.filter(conversation=conversation)
        .select_related("author", "sender_contact")
        .order_by("-sent_at", "-id")[:limit]
    )
    return list(rows)[::-1]


def contact_panel(conversation: Conversation) -> dict:
    contact = conversation.contact
    links = list(ContactAccount.objects.filter(contact=contact).select_related("account").order_by("first_seen_at"))
    return {
        "tags": list(contact.tags.order_by("name")),
        "links": links,
        "reply_accounts": [l.account for l in links if l.account.archived_at is None and l.account.status == "connected"],
        "other_conversations": list(
            Conversation.objects.filter(contact=contact).exclude(pk=conversation.pk).select_related("account")
        ),
        "history": list(ConversationEvent.objects.filter(conversation=conversation).select_related("actor")[:10]),
    }


def canned_responses_for(location):
    return CannedResponse.objects.filter(location=location)
