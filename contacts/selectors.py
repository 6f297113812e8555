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
