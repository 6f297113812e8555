"""The sandbox phone: a simulated handset for sandbox accounts (see providers/sandbox.py).

Whatever the person does on it (write, quote-reply, react, edit or delete for everyone what
they sent, or type on the account's own phone) becomes the same JSON a signed sandbox webhook
carries, read by the provider's parse_envelope() and stored like any webhook."""
import secrets

from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.base import WebhookMalformed
from accounts.services import account_apply_events
from accounts.tenancy import get_for_location, location_required
from conversations.models import Conversation, Message
from conversations.services import webhook_events_record
from conversations.timeline import COMMON_REACTIONS, ME, decorate
from whatsnap.phones import normalise_for_account

DEFAULT_SENDER = "+14155550100"
PHONE_ACTIONS = ("message", "from_me", "reaction", "edit", "delete")


def _sandbox_account(request, pk):
    return get_for_location(Account.objects.filter(backend="sandbox", archived_at__isnull=True), request.location, pk=pk)


def _contact_phone(account, phone) -> str:
    return normalise_for_account(phone, account_phone=account.phone_number).value


def _thread(account, phone) -> list[Message]:
    """The last 50 messages between the account and this phone as the phone shows them: the
    reactions on each (`phone_reaction`: this person's), and `read` on what the person sent
    once the account sent its read receipt."""
    contact_phone = _contact_phone(account, phone)
    conversation = Conversation.objects.filter(account=account, contact__phone=contact_phone).first()
    if conversation is None:
        return []
    rows = Message.objects.filter(conversation=conversation, is_note=False).order_by("-sent_at", "-id")[:50]
    messages = decorate(list(rows)[::-1], account)
    mine = f"c{conversation.contact_id}"
    for m in messages:
        m.phone_reaction = next((r.emoji for r in m.reactions.all() if r.actor_key == mine), "")
        # as a phone shows them: the account's reaction is the account's, whichever agent made it
        m.phone_chips = [(r.emoji, account.name if r.actor_key == ME else r.contact.display_name if r.contact else "")
                         for r in m.reactions.all()]
        m.read = m.direction == Message.Direction.INBOUND and m.pk <= conversation.read_receipt_through
        m.typed_here = m.direction == Message.Direction.INBOUND or m.via_device
    return messages


def _context(account, phone, name="", **extra) -> dict:
    return {"account": account, "phone": phone, "name": name, "thread_messages": _thread(account, phone),
            "reaction_choices": COMMON_REACTIONS, **extra}


@location_required
def sandbox_phone(request, pk):
    account = _sandbox_account(request, pk)
    phone = request.GET.get("phone") or DEFAULT_SENDER
    ctx = _context(account, phone, request.GET.get("name", ""), link_nonce=request.GET.get("link", ""), link_failed="link_failed" in request.GET,
                   suggested_number="+1415555" + f"{secrets.randbelow(10000):04d}")
    return render(request, "sandbox/phone.html", ctx)


@location_required
def sandbox_thread(request, pk):
    account = _sandbox_account(request, pk)
    phone = request.GET.get("phone") or DEFAULT_SENDER
    return render(request, "sandbox/_thread.html", _context(account, phone))


@require_POST
@location_required
def sandbox_link(request, pk):
    account = _sandbox_account(request, pk)
    provider = get_provider("sandbox")
    phone = request.POST.get("phone_number", "").strip()
    events = provider.link(account, nonce=request.POST.get("link", "").strip(), phone=phone)
    account_apply_events(account=account, events=events)
    account.refresh_from_db(fields=["status"])
    if account.status != Account.Status.CONNECTED:  # a wrong or expired code: say so, not a silent reload
        return redirect(reverse("sandbox-phone", args=[account.pk]) + "?link_failed=1")
    return redirect("sandbox-phone", pk=account.pk)


@require_POST
@location_required
def sandbox_send(request, pk):
    """Something done on the simulated phone (`type`, one of PHONE_ACTIONS): the same path as
    a real webhook, from the JSON on."""
    account = _sandbox_account(request, pk)
    phone = request.POST.get("phone", "").strip() or DEFAULT_SENDER
    name = request.POST.get("name", "").strip()
    error = None
    if account.status != Account.Status.CONNECTED:
        error = "This sandbox account is not connected; link it first."
    else:
        envelope, error = _envelope(account, request.POST, phone=phone, name=name)
        if envelope is not None:
            try:
                events = get_provider(account.backend).parse_envelope(account, envelope)
            except WebhookMalformed as exc:
                error = str(exc)
            else:
                webhook_events_record(account=account, events=events)
    return render(request, "sandbox/_thread.html", _context(account, phone, name, error=error))


def _envelope(account, form, *, phone: str, name: str) -> tuple[dict | None, str | None]:
    """The sandbox webhook JSON for what the person did, or the reason it is refused."""
    kind, text = form.get("type", "message"), form.get("text", "")
    if kind not in PHONE_ACTIONS:
        return None, "Unknown action."
    token = secrets.token_hex(8)
    if kind in ("message", "from_me"):
        if not text.strip():
            return None, "Type a message."
        envelope = {"type": kind, "id": f"sbx-{'me' if kind == 'from_me' else 'in'}-{token}", "text": text}
        envelope.update({"to": phone} if kind == "from_me" else {"from": phone, "name": name})
        quoted = _target(account, phone, form.get("reply_to", ""))
        if quoted is not None:
            envelope.update(reply_to=quoted.provider_message_id, quoted_text=quoted.text[:300])
        return envelope, None
    target = _target(account, phone, form.get("target", ""))
    if target is None:
        return None, "That message is not in this chat."
    if kind == "reaction":
        return {"type": "reaction", "id": f"sbx-re-{token}", "target": target.provider_message_id, "from": phone,
                "emoji": form.get("emoji", "")}, None
    if not (target.direction == Message.Direction.INBOUND or target.via_device):
        return None, "Only a message typed on this phone can be edited or deleted here."
    if kind == "edit":
        if not text.strip():
            return None, "An edit needs the new text (delete the message instead)."
        return {"type": "edit", "id": f"sbx-ed-{token}", "target": target.provider_message_id, "text": text,
                "from_me": target.via_device, "from": phone}, None
    return {"type": "delete", "target": target.provider_message_id, "from_me": target.via_device, "from": phone}, None


def _target(account, phone: str, provider_id: str) -> Message | None:
    """A message of this phone's chat with the account, by its provider id."""
    if not provider_id:
        return None
    return Message.objects.filter(account=account, provider_message_id=provider_id, is_note=False,
                                  conversation__contact__phone=_contact_phone(account, phone)).first()
