"""The New conversation page (issue 18), reached from the inbox's list header and from a
contact's page: choose an account, type a number or pick one of the location's contacts (a
small search as you type), write the message, send — and land in that conversation.

The work is conversations.starting.conversation_start; here are only the form, its errors shown
in place (an HTMX submit swaps the form; a plain POST re-renders the page) and the contact
search. Every id the request gives is looked up in request.location only."""
from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from accounts.reach import unreachable_reason
from accounts.tenancy import get_for_location, location_required
from contacts.models import Contact
from contacts.selectors import contacts_search
from conversations.merge_fields import FIELDS
from conversations.models import Conversation
from conversations.starting import account_label, conversation_start, looks_like_phone, phone_example, startable_accounts
from whatsnap.errors import ApplicationError
from whatsnap.params import id_param

MATCHES = 8
NOT_AN_ACCOUNT = "Choose one of this location's connected accounts."


def _picked_contact(request, data) -> Contact | None:
    """The contact chosen in the form (a contact id of this location; any other id is 404)."""
    if data.get("change"):
        return None
    wanted = (data.get("contact") or "").strip()
    if not wanted:
        return None
    return get_for_location(Contact.objects.all(), request.location, pk=id_param(wanted) or 0)


def _account_choices(location, contact) -> list[dict]:
    """Every account of the location, connected ones first, each with why it cannot be used
    here (not connected, or cannot reach the picked contact)."""
    choices = []
    for account in startable_accounts(location):
        reason = unreachable_reason(account, contact) if contact is not None else None
        if reason is None and not account.accepts_replies:
            reason = f"not connected ({account.get_status_display()})"
        choices.append({"account": account, "label": account_label(account), "reason": reason})
    return sorted(choices, key=lambda c: c["reason"] is not None)


def _form_context(request, data, *, contact=None, errors=None) -> dict:
    choices = _account_choices(request.location, contact)
    chosen = id_param(data.get("account") or "")
    if chosen is None:
        usable = [c["account"].pk for c in choices if c["reason"] is None]
        preferred = contact.active_account_id if contact is not None else None
        chosen = preferred if preferred in usable else (usable[0] if usable else None)
    return {
        "contact": contact,
        "existing": _existing(contact),
        "choices": choices,
        "chosen_account": chosen,
        "phone": "" if contact is not None else (data.get("phone") or "").strip()[:40],
        "name": (data.get("name") or "").strip()[:120],
        "text": data.get("text") or "",
        "errors": errors or {},
        "region": request.location.phone_region,
        "phone_example": phone_example(request.location.phone_region),
        "merge_fields": FIELDS,
    }


def _existing(contact) -> list:
    """The picked contact's conversations: a message through one of their accounts joins it."""
    if contact is None:
        return []
    return list(Conversation.objects.filter(contact=contact).select_related("account", "assignee").order_by("-last_message_at")[:5])


def _render_form(request, data, *, contact=None, errors=None, status=200):
    ctx = _form_context(request, data, contact=contact, errors=errors)
    if request.htmx and not request.htmx.boosted:
        return render(request, "conversations/_new_conversation_form.html", ctx)
    return render(request, "conversations/new_conversation.html", ctx, status=status)


@location_required
def conversation_new(request):
    """GET: the form (?contact=<id> picks a contact; ?account=, ?phone=, ?text= prefill it).
    POST: start it."""
    data = request.POST if request.method == "POST" else request.GET
    contact = _picked_contact(request, data)
    if request.method != "POST":
        return _render_form(request, data, contact=contact)
    try:
        account = _account(request, data)
        started = conversation_start(location=request.location, account=account, text=data.get("text", ""),
                                     phone=data.get("phone", ""), contact=contact, name=data.get("name", ""),
                                     author=request.user)
    except ApplicationError as exc:
        errors = {exc.field or "form": exc.message}
        # an HTMX swap needs a 2xx answer; a plain POST says 400
        return _render_form(request, data, contact=contact, errors=errors, status=400)
    messages.success(request, started.notice)
    target = reverse("conversation", kwargs={"pk": started.conversation.pk})
    return HttpResponseClientRedirect(target) if request.htmx else redirect(target)


def _account(request, data):
    """The chosen account: one of this location's, not archived. Another location's id reads
    exactly like an id nobody has."""
    wanted = id_param((data.get("account") or "").strip())
    account = startable_accounts(request.location).filter(pk=wanted).first() if wanted else None
    if account is None:
        raise ApplicationError(NOT_AN_ACCOUNT, code="not_found", field="account")
    return account


@location_required
def conversation_new_contacts(request):
    """The contacts matching what is typed in the To field (name, phone or tag), as choices."""
    query = (request.GET.get("phone") or request.GET.get("q") or "").strip()[:100]
    matches = list(contacts_search(location=request.location, query=query)[:MATCHES]) if len(query) >= 2 else []
    return render(request, "conversations/_new_conversation_matches.html",
                  {"matches": matches, "query": query, "number_like": looks_like_phone(query)})
