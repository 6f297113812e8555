"""The sandbox phone: a simulated handset for sandbox accounts (see providers/sandbox.py)."""
import secrets

from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import InboundMessage
from accounts.services import account_apply_events
from accounts.tenancy import get_for_location, location_required
from conversations.models import Message
from conversations.services import webhook_events_record
from whatsnap.phones import normalise_sender, region_of

DEFAULT_SENDER = "+14155550100"


def _sandbox_account(request, pk):
    return get_for_location(Account.objects.filter(backend="sandbox", archived_at__isnull=True), request.location, pk=pk)


def _thread(account, phone):
    sender = normalise_sender(phone, default_region=region_of(account.phone_number) or "US")
    return (
        Message.objects.filter(account=account, conversation__contact__phone=sender.value)
        .order_by("-sent_at", "-id")[:50][::-1]
    )


@location_required
def sandbox_phone(request, pk):
    account = _sandbox_account(request, pk)
    phone = request.GET.get("phone") or DEFAULT_SENDER
    ctx = {
        "account": account,
        "link_nonce": request.GET.get("link", ""),
        "phone": phone,
        "name": request.GET.get("name", ""),
        "thread_messages": _thread(account, phone),
        "suggested_number": "+1415555" + f"{secrets.randbelow(10000):04d}",
    }
    return render(request, "sandbox/phone.html", ctx)


@location_required
def sandbox_thread(request, pk):
    account = _sandbox_account(request, pk)
    phone = request.GET.get("phone") or DEFAULT_SENDER
    return render(request, "sandbox/_thread.html", {"account": account, "thread_messages": _thread(account, phone), "phone": phone})


@require_POST
@location_required
def sandbox_link(request, pk):
    account = _sandbox_account(request, pk)
    provider = get_provider("sandbox")
    phone = request.POST.get("phone_number", "").strip()
    events = provider.link(account, nonce=request.POST.get("link", "").strip(), phone=phone)
    account_apply_events(account=account, events=events)
    return redirect("sandbox-phone", pk=account.pk)


@require_POST
@location_required
def sandbox_send(request, pk):
    """The simulated person writes into the account: the same path as a real webhook."""
    account = _sandbox_account(request, pk)
    phone = request.POST.get("phone", "").strip() or DEFAULT_SENDER
    name = request.POST.get("name", "").strip()
    text = request.POST.get("text", "")
    error = None
    if account.status != Account.Status.CONNECTED:
        error = "This sandbox account is not connected; link it first."
    elif not text.strip():
        error = "Type a message."
    else:
        event = InboundMessage(
            provider_id=f"sbx-in-{secrets.token_hex(8)}", from_phone=phone, name=name, text=text, at=timezone.now()
        )
        webhook_events_record(account=account, events=[event])
    return render(
        request,
        "sandbox/_thread.html",
        {"account": account, "thread_messages": _thread(account, phone), "phone": phone, "error": error},
    )
