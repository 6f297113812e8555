from django.db.models import Count, Prefetch, Q

from contacts.models import Contact, ContactAccount, Tag


def tags_with_counts(location):
    return Tag.objects.filter(location=location).select_related("account").annotate(contact_count=Count("contacttag")).order_by("name")


def contacts_search(*, location, query: str = "", tag_id=None):
    qs = Contact.objects.filter(location=location).select_related("assignee", "active_account").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.order_by("name")),
        Prefetch("account_links", queryset=ContactAccount.objects.select_related("account")),
    )
    if query:
        digits = "".join(ch for ch in query if ch.isdigit())
        match = Q(name__icontains=query) | Q(phone__icontains=query) | Q(tags__name__icontains=query)
        if digits:
            match |= Q(phone__contains=digits)
        qs = qs.filter(match).distinct()
    if tag_id:
        qs = qs.filter(contacttag__tag_id=tag_id)
    return qs.order_by("-created_at", "-id")


def written_first(conversations, links) -> list:
    """The conversations (one per account) running through an account the contact has not
    written through yet: started by us (New conversation, GHL). ContactAccount stays what it
    says, "the contact wrote through it"; these are listed beside it, told apart."""
    linked = {link.account_id for link in links}
    first = {}
    for conversation in sorted(conversations, key=lambda c: c.created_at):
        if conversation.account_id not in linked:
            first.setdefault(conversation.account_id, conversation)
    return list(first.values())
