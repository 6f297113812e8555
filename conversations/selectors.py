from django.db.models import Q

from conversations.models import Conversation, Message


def conversations_for(*, location, user, view: str = "all", account_id=None, status: str = "", query: str = ""):
    qs = Conversation.objects.filter(location=location).select_related("contact", "account", "assignee")
    if view == "mine":
        qs = qs.filter(assignee=user)
    elif view == "unassigned":
        qs = qs.filter(assignee__isnull=True)
    if account_id:
        qs = qs.filter(account_id=account_id)
    if status:
        qs = qs.filter(status=status)
    if query:
        qs = qs.filter(
            Q(contact__name__icontains=query)
            | Q(contact__phone__icontains=query)
            | Q(last_message_preview__icontains=query)
        )
    return qs.order_by("-last_message_at", "-id")


def messages_of(conversation: Conversation, limit: int = 100):
    rows = (
        Message.objects.filter(conversation=conversation)
        .select_related("author", "sender_contact")
        .order_by("-sent_at", "-id")[:limit]
    )
    return list(rows)[::-1]
