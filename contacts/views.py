from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Membership
from accounts.tenancy import admin_required, get_for_location, location_required
from contacts import fields as custom_fields
from contacts import selectors, services
from contacts.models import Contact, Tag
from whatsnap.errors import ApplicationError
from whatsnap.params import id_param, page_param
from whatsnap.phones import normalise_sender


@location_required
def tag_list(request):
    return render(request, "contacts/tags.html", {"tags": selectors.tags_with_counts(request.location)})


@require_POST
@admin_required
def tag_action(request, pk=None):
    action = request.POST.get("action")
    try:
        if action == "create":
            tag = services.tag_create(location=request.location, name=request.POST.get("name", ""))
            messages.success(request, f"Tag {tag.name} created.")
        else:
            tag = get_for_location(Tag.objects.select_related("account"), request.location, pk=pk)
            if action == "rename":
                services.tag_rename(tag=tag, name=request.POST.get("name", ""))
                messages.success(request, f"Renamed to {tag.name}.")
            elif action == "merge":
                into = get_for_location(Tag.objects.all(), request.location, pk=request.POST.get("into") or 0)
                moved = services.tag_merge(source=tag, into=into)
                messages.success(request, f"Merged into {into.name} ({moved} contact(s) gained it).")
            elif action == "delete":
                services.tag_delete(tag=tag)
                messages.success(request, f"Tag {tag.name} deleted.")
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("tag-list")


@location_required
def contact_list(request):
    query = request.GET.get("q", "").strip()
    tag_id = id_param(request.GET.get("tag"))
    contacts = selectors.contacts_search(location=request.location, query=query, tag_id=tag_id)
    field_filters = custom_fields.filter_params(request.location, request.GET)
    try:
        contacts = custom_fields.apply_filters(contacts, request.location, request.GET)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        contacts = contacts.none()
    page = Paginator(contacts, 50).get_page(page_param(request.GET.get("page")))
    params = {"q": query, **({"tag": tag_id} if tag_id else {}), **field_filters}
    return render(request, "contacts/list.html", {
        "page": page, "query": query, "tag_id": tag_id, "tags": Tag.objects.filter(location=request.location),
        "fields": custom_fields.fields_of(request.location), "field_filters": field_filters,
        "filter_query": urlencode(params), "filtered": bool(query or tag_id or field_filters),
    })


@location_required
def contact_detail(request, pk):
    contact = get_for_location(selectors.contacts_search(location=request.location), request.location, pk=pk)
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "merge":
                source = _contact_by_phone_or_id(request, request.POST.get("source", ""))
                services.contact_merge(source=source, into=contact)
                messages.success(request, f"{source.display_name} merged into this contact.")
            elif action in ("opt_out", "opt_in"):
                changed = services.contact_set_opted_out(contact=contact, opted_out=action == "opt_out",
                                                         by_admin=request.membership.role == Membership.Role.ADMIN)
                if changed and action == "opt_out":
                    messages.success(request, f"{contact.display_name} is opted out: nothing is sent to them until they send START.")
                elif changed:
                    messages.success(request, f"{contact.display_name} is opted back in.")
            else:
                services.contact_update(contact=contact, name=request.POST.get("name", ""),
                                        tag_ids=[n for n in map(id_param, request.POST.getlist("tags")) if n])
                messages.success(request, "Contact saved.")
        except ApplicationError as exc:
            messages.error(request, exc.message)
        return redirect("contact-detail", pk=pk)
    conversations = list(contact.conversations.select_related("account", "assignee").order_by("-last_message_at"))
    return render(request, "contacts/detail.html", {
        "contact": contact, "conversations": conversations,
        "written_first": selectors.written_first(conversations, contact.account_links.all()),
        "all_tags": Tag.objects.filter(location=request.location),
        "tag_ids": {t.pk for t in contact.tags.all()},
    })


def _contact_by_phone_or_id(request, value: str) -> Contact:
    value = value.strip()
    if id_param(value) and len(value) < 7:
        found = Contact.objects.filter(location=request.location, pk=int(value)).first()
    else:
        phone = normalise_sender(value, default_region="US").value
        found = Contact.objects.filter(location=request.location, phone=phone).first() if value else None
    if found is None:  # said next to the form, not a "Not found" page
        raise ApplicationError(f"No contact with the number or id “{value[:40]}” in this location: "
                               "type the other contact's number as shown on its page, e.g. +1 415 555 0100.",
                               code="not_found", field="source")
    return found
