"""Issue 17 browser review, on the pages: a contact WhatsApp knows only by its LID says that its
number is not shared yet (the LID only in an admin's tooltip), the settings change log speaks in
the form's labels and shows off / 0 values as such, and the demo logins have e-mail addresses
(alert e-mails reach the demo admin)."""
import json
import re

from django.core.management import call_command
from django.test import Client

from accounts.models import Account, Membership
from accounts.providers import get_provider
from accounts.providers.sandbox import sign
from accounts.services import account_apply_events, account_connect, account_create, account_set_status
from contacts.models import Contact
from conversations.models import Conversation

LID = "98765432101234@lid"


def _linked_whatsapp(location):
    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="Shop")
    account_connect(account=account)
    account.refresh_from_db()
    nonce = account.qr_payload.split("link=")[1]
    account_apply_events(account=account, events=get_provider("sandbox").link(account, nonce=nonce, phone="+14155550143"))
    account.refresh_from_db()
    return account


def _post(account, payload: dict):
    body = json.dumps(payload).encode()
    return Client().post(f"/webhooks/sandbox/{account.pk}/", data=body, content_type="application/json",
                         HTTP_X_SANDBOX_SIGNATURE=sign(account.webhook_secret, body))


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_a_contact_known_only_by_its_lid_says_its_number_is_not_shared_yet(location, admin_client, agent_client):
    account = _linked_whatsapp(location)
    assert _post(account, {"id": "lid-1", "from": LID, "name": "Priya", "text": "hello"}).status_code == 200
    contact = Contact.objects.get(location=location, phone=LID)
    assert not contact.phone_is_e164 and contact.number_unknown
    conversation = Conversation.objects.get(contact=contact)
    for client in (admin_client, agent_client):
        for path in (f"/inbox/{conversation.pk}/", f"/inbox/{conversation.pk}/header/", f"/inbox/{conversation.pk}/panel/",
                     "/contacts/", f"/contacts/{contact.pk}/"):
            html = client.get(path).content.decode()
            assert "Priya" in html and "Number not shared yet (WhatsApp)" in html, path
            # the LID is never shown as the number; an admin finds it in the tooltip only
            assert LID not in _text(html), path
    inbox = admin_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert f"title=\"WhatsApp's id for this person: {LID}." in inbox.replace("&#x27;", "'")
    assert LID not in agent_client.get(f"/inbox/{conversation.pk}/").content.decode()
    # a number known: shown as before
    assert _post(account, {"id": "p-1", "from": "+14155550177", "name": "Grace", "text": "hi"}).status_code == 200
    contacts = _text(agent_client.get("/contacts/").content.decode())
    assert "+14155550177" in contacts and contacts.count("Number not shared yet") == 1
    # nameless and numberless: not a raw id as the name either
    nameless = Contact(location=location, phone="123@lid", phone_is_e164=False, whatsapp_lid="123@lid")
    assert nameless.display_name == "WhatsApp contact" and nameless.phone_label == "Number not shared yet (WhatsApp)"


def test_the_demo_logins_have_addresses_so_alert_emails_reach_the_demo_admin(db, capsys, mailoutbox):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "admin@example.com" in out and "worker's log" in out
    admin = Membership.objects.get(role=Membership.Role.ADMIN, user__username="admin")
    assert admin.user.email == "admin@example.com"
    assert Membership.objects.get(user__username="agent").user.email == "agent@example.com"
    account = account_create(location=admin.location, kind="android_sms", backend="sandbox", name="Shop")
    account_connect(account=account)
    account_set_status(account=account, status=Account.Status.DISCONNECTED, reason="phone offline")
    assert [m.to for m in mailoutbox] == [["admin@example.com"]] and "needs attention" in mailoutbox[0].subject


def _settings_form(account, **changes) -> dict:
    """The settings form as it stands, with `changes` (a switch turned off is left out)."""
    data = {"name": account.name, "timezone": account.timezone, "signature": account.signature, "default_assignee": "",
            "default_team": "", "auto_reply_text": "", "send_per_minute": account.send_per_minute,
            "send_jitter_seconds": account.send_jitter_seconds, "typing_delay_seconds": account.typing_delay_seconds,
            "send_read_receipts": "on" if account.send_read_receipts else None, "history_days": account.history_days,
            "quiet_alert_minutes": account.quiet_alert_minutes, "hours_text": ""}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_settings_change_log_speaks_in_labels_and_shows_off_and_zero(location, admin_client, admin_user):
    account = _linked_whatsapp(location)
    assert account.send_read_receipts is True and account.quiet_alert_minutes == 0
    url = f"/accounts/{account.pk}/settings/"
    response = admin_client.post(url, _settings_form(account, send_read_receipts=None, quiet_alert_minutes=60), follow=True)
    page = _text(response.content.decode())
    assert "Saved (Send read receipts, Alert after silence (minutes))." in page
    assert "Send read receipts: on → off" in page and "Alert after silence (minutes): 0 → 60" in page
    assert "send_read_receipts" not in page and "quiet_alert_minutes" not in page

    account.refresh_from_db()
    admin_client.post(url, _settings_form(account, send_read_receipts="on", quiet_alert_minutes=0,
                                          default_assignee=admin_user.pk, hours_text="mon 09:00-17:00"))
    page = _text(admin_client.get(url).content.decode())
    assert "Send read receipts: off → on" in page and "Alert after silence (minutes): 60 → 0" in page
    assert "Default assignee: — → owner" in page and "Business hours: always open → mon 09:00-17:00" in page
