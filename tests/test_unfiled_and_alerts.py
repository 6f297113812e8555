"""Issue 17, points 1, 6 and 11 as a location's people see them: unfiled webhooks on the
account page (counts and reasons, most recent first) and their re-run by admins (per reason, all,
and the Django admin's action), the retention sweep; webhooks refused and why; account alerts
(disconnected, logged out, silent) as a banner for every member, an outgoing webhook
`account.status` and one e-mail to the admins when raised and one when cleared; what each role
can do about it (admins reconnect on the account's page); no alert for a disconnect a person
asked for, nor for the gateway's echo of it."""
import json
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from accounts.alerts import alert_email_send, quiet_accounts_sweep, quiet_alert
from accounts.models import Account, AccountEvent, Membership
from accounts.providers.base import ConnectionChanged, InboundMessage, Reaction, Unfiled
from accounts.providers.sandbox import SandboxProvider, sign
from accounts.services import (account_archive, account_connect, account_create, account_disconnect, account_set_status,
                               account_webhook_refused)
from conversations.models import InboundEvent, Message
from conversations.receiving import webhook_events_record
from conversations.unfiled import FILED, unfiled_prune, unfiled_rerun
from hooks.models import WebhookDelivery
from hooks.services import hook_subscription_create
from tests.standins.evolution_standin import EvolutionStandIn
from whatsnap import events
from whatsnap.tasks import run_sweeps

SINCE = re.compile(r"\(since [A-Z][a-z]{2} \d{1,2}, \d\d:\d\d\)")  # the pages' "Dec 1, 12:02"


def _post(account, payload: dict, *, secret: str | None = None):
    body = json.dumps(payload).encode()
    return Client().post(f"/webhooks/sandbox/{account.pk}/", data=body, content_type="application/json",
                         HTTP_X_SANDBOX_SIGNATURE=sign(secret or account.webhook_secret, body))


def _unfiled(account, *, reason: str, envelope: dict, key: str, days_ago: float = 0) -> InboundEvent:
    """A webhook an earlier version kept unfiled: the reason and the whole verified body."""
    return InboundEvent.objects.create(
        account=account, kind=InboundEvent.Kind.UNFILED, dedupe_key=f"unf:{key}", status=InboundEvent.Status.UNFILED,
        payload={"reason": reason, "envelope": envelope}, error=reason,
        received_at=timezone.now() - timedelta(days=days_ago), processed_at=timezone.now())


def _page(client, account) -> str:
    response = client.get(f"/accounts/{account.pk}/")
    assert response.status_code == 200
    return response.content.decode()


def _reason_rows(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", row) for row in re.findall(r'<tr class="unfiled-reason">(.*?)</tr>', html, re.S)]


# --- unfiled events on the account page ------------------------------------------------------------
def test_a_webhook_the_backend_cannot_file_is_listed_with_its_reason(sandbox_account, admin_client, agent_client):
    assert _post(sandbox_account, {"type": "typing", "id": "t-1", "from": "+14155550123"}).status_code == 200
    assert _post(sandbox_account, {"type": "typing", "id": "t-2", "from": "+14155550123"}).status_code == 200
    assert _post(sandbox_account, {"type": "typing", "id": "t-2", "from": "+14155550123"}).status_code == 200  # redelivery
    older = _unfiled(sandbox_account, reason="reaction to a message without id", envelope={"type": "x"}, key="old", days_ago=2)

    page = _page(admin_client, sandbox_account)
    assert "Unfiled webhooks" in page and "3 webhook event(s) were accepted but not filed" in page
    rows = _reason_rows(page)
    assert len(rows) == 2
    assert "unsupported event type &#x27;typing&#x27;" in rows[0] and "<td>2</td>" in rows[0]  # most recent first
    assert "reaction to a message without id" in rows[1] and "<td>1</td>" in rows[1]
    assert older.received_at.astimezone(ZoneInfo("America/New_York")).strftime("%Y-%m-%d %H:%M") in rows[1]  # the member's zone
    assert page.count('class="btn rerun"') == 2 and 'id="rerun-all-unfiled"' in page
    # an agent sees the same list, without the buttons
    agent_page = _page(agent_client, sandbox_account)
    assert len(_reason_rows(agent_page)) == 2 and "btn rerun" not in agent_page and "rerun-all-unfiled" not in agent_page


def test_rerun_files_what_the_parser_understands_now(sandbox_account, admin_client):
    envelope = {"id": "m-77", "from": "+14155550123", "name": "Ada", "text": "Do you ship to Canada?"}
    row = _unfiled(sandbox_account, reason="message of a type this version did not read", envelope=envelope, key="m-77")
    other = _unfiled(sandbox_account, reason="another reason", envelope={"type": "typing"}, key="other")

    response = admin_client.post(f"/accounts/{sandbox_account.pk}/unfiled/rerun/",
                                 {"reason": "message of a type this version did not read"}, follow=True)
    assert "Re-ran 1 unfiled event(s): 1 filed, 0 queued for filing, 0 still unfiled." in response.content.decode()
    row.refresh_from_db()
    assert (row.status, row.error) == (InboundEvent.Status.DONE, FILED)
    message = Message.objects.get(account=sandbox_account, provider_message_id="m-77")
    assert message.text == "Do you ship to Canada?" and message.conversation.contact.phone == "+14155550123"
    other.refresh_from_db()
    assert other.status == InboundEvent.Status.UNFILED  # another reason: not touched

    # a second re-run of everything files nothing twice
    InboundEvent.objects.filter(pk=row.pk).update(status=InboundEvent.Status.UNFILED)
    result = unfiled_rerun(account=sandbox_account)
    assert (result.filed, result.still_unfiled) == (1, 1)
    assert Message.objects.filter(provider_message_id="m-77").count() == 1


def test_rerun_keeps_what_still_cannot_be_filed_with_the_new_reason(sandbox_account, admin_client):
    still = _unfiled(sandbox_account, reason="old reason", envelope={"type": "typing", "id": "t-9"}, key="t-9")
    broken = _unfiled(sandbox_account, reason="no sender", envelope={"type": "message", "text": "no id, no sender"}, key="b")
    bodiless = InboundEvent.objects.create(account=sandbox_account, kind=InboundEvent.Kind.UNFILED, dedupe_key="unf:nobody",
                                           status=InboundEvent.Status.UNFILED, payload={"reason": "lost"}, error="lost")

    response = admin_client.post(f"/accounts/{sandbox_account.pk}/unfiled/rerun/", follow=True)  # all
    assert "Re-ran 3 unfiled event(s): 0 filed, 0 queued for filing, 3 still unfiled" in response.content.decode()
    for row in (still, broken, bodiless):
        row.refresh_from_db()
        assert row.status == InboundEvent.Status.UNFILED
    assert still.error == "unsupported event type 'typing'"
    assert broken.error.startswith("no sender (re-run: sandbox message not understood")
    assert bodiless.error == "lost (re-run: no stored webhook body to read again)"
    # a reason grows no longer with every re-run: it is the stored reason + this run's answer
    unfiled_rerun(account=sandbox_account)
    broken.refresh_from_db()
    assert broken.error.count("re-run") == 1


def test_rerun_never_applies_an_old_session_state(sandbox_account, monkeypatch):
    """A stored body that now parses as a connection change (and a message) files the message;
    the connection state of back then is not applied."""
    old = InboundMessage(provider_id="m-1", from_phone="+14155550123", name="", text="hi", at=timezone.now())
    monkeypatch.setattr(SandboxProvider, "parse_envelope",
                        lambda self, account, envelope: [ConnectionChanged(status="logged_out"), old])
    row = _unfiled(sandbox_account, reason="x", envelope={"any": "thing"}, key="k")
    assert unfiled_rerun(account=sandbox_account).filed == 1
    sandbox_account.refresh_from_db()
    assert sandbox_account.status == Account.Status.CONNECTED
    row.refresh_from_db()
    assert row.status == InboundEvent.Status.DONE and Message.objects.filter(provider_message_id="m-1").exists()


def test_rerun_of_an_event_filing_could_not_place_queues_it_again(sandbox_account):
    """A reaction that overtook its message was kept unfiled; once the message is there, the
    re-run files it."""
    at = timezone.now()
    webhook_events_record(account=sandbox_account, events=[
        Reaction(provider_id="r-1", target_id="m-5", emoji="👍", at=at, from_phone="+14155550123")])
    reaction = InboundEvent.objects.get(kind=InboundEvent.Kind.REACTION)
    InboundEvent.objects.filter(pk=reaction.pk).update(status=InboundEvent.Status.UNFILED, error="reaction of a message WhatSnap does not have")
    assert _post(sandbox_account, {"id": "m-5", "from": "+14155550123", "text": "hello"}).status_code == 200

    result = unfiled_rerun(account=sandbox_account)
    assert result.requeued == 1
    reaction.refresh_from_db()
    assert reaction.status == InboundEvent.Status.DONE
    assert Message.objects.get(provider_message_id="m-5").reactions.get().emoji == "👍"


def test_rerun_is_for_admins_of_the_accounts_location(sandbox_account, agent_client, outsider_client, admin_client):
    row = _unfiled(sandbox_account, reason="x", envelope={"type": "typing"}, key="k")
    url = f"/accounts/{sandbox_account.pk}/unfiled/rerun/"
    assert agent_client.post(url).status_code == 403
    assert outsider_client.post(url).status_code == 404  # another location's account: not found
    assert admin_client.get(url).status_code == 405
    row.refresh_from_db()
    assert row.error == "x"


def _staff(location, username: str):
    staff = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__endswith="inboundevent"))
    Membership.objects.create(user=staff, location=location, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(staff)
    return client


def test_admin_action_reruns_the_selected_unfiled_events_of_the_staffs_locations(location, other_location, sandbox_account):
    theirs = account_create(location=other_location, kind="android_sms", backend="sandbox", name="Theirs", phone_number="+14155550222")
    account_connect(account=theirs)
    mine = _unfiled(sandbox_account, reason="not read yet", envelope={"id": "m-1", "from": "+14155550123", "text": "hi"}, key="1")
    foreign = _unfiled(theirs, reason="not read yet", envelope={"id": "m-2", "from": "+14155550123", "text": "hi"}, key="2")
    client = _staff(location, "staff")

    listing = client.get("/admin/conversations/inboundevent/", {"reason": "not read yet"})
    assert [row.pk for row in listing.context["cl"].result_list] == [mine.pk]
    response = client.post("/admin/conversations/inboundevent/",
                           {"action": "rerun_unfiled", "_selected_action": [mine.pk, foreign.pk]}, follow=True)
    assert "Re-ran 1 unfiled event(s): 1 filed" in response.content.decode()
    mine.refresh_from_db()
    foreign.refresh_from_db()
    assert mine.status == InboundEvent.Status.DONE and foreign.status == InboundEvent.Status.UNFILED
    assert not Message.objects.filter(account=theirs).exists()


def test_unfiled_events_past_the_retention_are_deleted_by_the_sweep(sandbox_account, settings):
    old = _unfiled(sandbox_account, reason="x", envelope={}, key="old", days_ago=31)
    recent = _unfiled(sandbox_account, reason="x", envelope={}, key="recent", days_ago=29)
    done = _unfiled(sandbox_account, reason="x", envelope={}, key="done", days_ago=40)
    InboundEvent.objects.filter(pk=done.pk).update(status=InboundEvent.Status.DONE)
    run_sweeps()
    assert set(InboundEvent.objects.values_list("pk", flat=True)) >= {recent.pk, done.pk}
    assert not InboundEvent.objects.filter(pk=old.pk).exists()
    settings.UNFILED_EVENT_RETENTION_DAYS = 0  # keep them
    InboundEvent.objects.filter(pk=recent.pk).update(received_at=timezone.now() - timedelta(days=400))
    assert unfiled_prune() == 0 and InboundEvent.objects.filter(pk=recent.pk).exists()


# --- point 6: webhooks refused ---------------------------------------------------------------------
def test_refused_webhooks_say_why_until_one_is_accepted(sandbox_account, admin_client):
    assert _post(sandbox_account, {"id": "m-1", "from": "+14155550123"}, secret="wrong").status_code == 403
    page = _page(admin_client, sandbox_account)
    assert "Webhooks refused: missing or wrong X-Sandbox-Signature (last at " in page
    assert _post(sandbox_account, {"id": "m-1", "from": "+14155550123", "text": "hi"}).status_code == 200
    assert "Webhooks refused" not in _page(admin_client, sandbox_account)


def test_a_waha_refusal_gives_its_advice_and_old_refusals_are_forgotten(sandbox_account, admin_client):
    reason = ("WAHA sent no X-Webhook-Hmac signature: WAHA Core before 2024.11.5 signs nothing — "
              "upgrade WAHA to 2024.11.5 or later and reconnect the account")
    account_webhook_refused(account=sandbox_account, reason=reason)
    assert f"Webhooks refused: {reason} (last at" in _page(admin_client, sandbox_account)
    Account.objects.filter(pk=sandbox_account.pk).update(webhook_refused_at=timezone.now() - timedelta(days=8))
    assert "Webhooks refused" not in _page(admin_client, sandbox_account)


# --- point 11: alerts ------------------------------------------------------------------------------
@pytest.fixture
def mailed_admins(location, admin_user, agent_user):
    admin_user.email, agent_user.email = "owner@example.com", "agent@example.com"
    admin_user.save()
    agent_user.save()
    second = get_user_model().objects.create_user("second", email="second@example.com", password="pw")
    Membership.objects.create(user=second, location=location, role=Membership.Role.ADMIN)
    return ["owner@example.com", "second@example.com"]


def _banner(client, path="/contacts/") -> str:
    """The alerts the banner shows on a page (one line each)."""
    html = client.get(path).content.decode()
    assert '<div id="account-alerts" data-live="alerts"' in html
    return "\n".join(re.sub(r"\s+", " ", a) for a in re.findall(r'<div class="account-alert"[^>]*>(.*?)</div>', html, re.S))


def _words(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_a_disconnected_account_alerts_every_member_until_it_is_back(
        location, sandbox_account, mailed_admins, admin_client, agent_client, outsider_client, mailoutbox):
    hook_subscription_create(location=location, url="http://127.0.0.1:9/hook", events=["account.status"])
    with events.captured() as seen:
        account_set_status(account=sandbox_account, status=Account.Status.DISCONNECTED, reason="phone offline")
    sandbox_account.refresh_from_db()
    assert sandbox_account.alert.startswith("Sales is disconnected (phone offline)") and sandbox_account.alert_at
    assert [(e["alert"], e["cleared"]) for e in seen if e.name == "account.alert"] == [(sandbox_account.alert, False)]
    # one e-mail per admin with an address (not the agent)
    assert sorted(m.to[0] for m in mailoutbox) == mailed_admins
    assert "needs attention" in mailoutbox[0].subject and "phone offline" in mailoutbox[0].body
    assert f"/accounts/{sandbox_account.pk}/" in mailoutbox[0].body
    # the outgoing webhook
    (delivery,) = WebhookDelivery.objects.filter(event="account.status")
    assert {k: delivery.payload["data"][k] for k in ("account", "name", "status", "alert", "cleared")} == {
        "account": sandbox_account.pk, "name": "Sales", "status": "disconnected", "alert": sandbox_account.alert, "cleared": False}
    assert delivery.payload["data"]["at"]
    # the banner, for every member of the location, on every page; never for another location
    for client in (admin_client, agent_client):
        assert "Sales is disconnected (phone offline)" in _banner(client)
        assert "Sales is disconnected" in _banner(client, "/inbox/")
        assert _words(_banner(client)).count("Sales") == 1  # the name once, not "Sales: Sales is …"
        assert SINCE.search(_banner(client)), _banner(client)  # the pages' time format
    # what each can do: an admin reconnects on the account's page; an agent has no Reconnect button
    assert f'<a href="/accounts/{sandbox_account.pk}/" class="alert-action"' in _banner(admin_client)
    assert "Reconnect it on its page" in _banner(admin_client) and "An admin can reconnect it" not in _banner(admin_client)
    assert "An admin can reconnect it." in _banner(agent_client) and "Reconnect it on its page" not in _banner(agent_client)
    assert "Reconnect on its page" not in sandbox_account.alert  # the sentence itself is for every reader
    assert "Sales is disconnected" not in outsider_client.get("/contacts/").content.decode()
    assert "Sales is disconnected" in agent_client.get("/accounts/alerts/").content.decode()  # the live part

    # worse while it stands: re-worded, no second e-mail
    account_set_status(account=sandbox_account, status=Account.Status.LOGGED_OUT, reason="banned")
    sandbox_account.refresh_from_db()
    assert sandbox_account.alert.startswith("Sales was logged out (banned)") and len(mailoutbox) == 2
    assert "logged out" in _banner(agent_client)

    # back
    with events.captured() as seen:
        account_set_status(account=sandbox_account, status=Account.Status.CONNECTED, reason="device linked")
    sandbox_account.refresh_from_db()
    assert (sandbox_account.alert, sandbox_account.alert_at) == ("", None)
    assert [(e["alert"], e["cleared"]) for e in seen if e.name == "account.alert"] == [("", True)]
    assert len(mailoutbox) == 4 and all("is back" in m.subject for m in mailoutbox[2:])
    assert "Sales was logged out (banned)" in mailoutbox[2].body
    assert WebhookDelivery.objects.filter(event="account.status").count() == 3
    assert WebhookDelivery.objects.order_by("-id").first().payload["data"]["cleared"] is True
    assert "Sales" not in _banner(agent_client)


def test_failing_sends_and_a_session_starting_raise_no_alert(sandbox_account, mailed_admins, mailoutbox):
    account_set_status(account=sandbox_account, status=Account.Status.ERROR, reason=f"{Account.SEND_FAILING}gateway 503")
    account_set_status(account=sandbox_account, status=Account.Status.CONNECTING, reason="connect requested")
    sandbox_account.refresh_from_db()
    assert sandbox_account.alert == "" and mailoutbox == []
    account_set_status(account=sandbox_account, status=Account.Status.ERROR, reason="gateway refused the key")
    sandbox_account.refresh_from_db()
    assert sandbox_account.alert.startswith("Sales is in error: gateway refused the key") and len(mailoutbox) == 2


def test_a_silent_account_alerts_after_its_quiet_period_and_clears_with_the_next_webhook(
        sandbox_account, mailed_admins, agent_client, mailoutbox):
    long_ago = timezone.now() - timedelta(minutes=45)
    Account.objects.filter(pk=sandbox_account.pk).update(quiet_alert_minutes=30, last_webhook_at=None, last_event_at=None)
    assert quiet_accounts_sweep() == 0  # never heard from, but added just now
    Account.objects.filter(pk=sandbox_account.pk).update(last_webhook_at=long_ago, last_event_at=long_ago - timedelta(hours=1))
    run_sweeps()
    sandbox_account.refresh_from_db()
    assert sandbox_account.alert.startswith("Sales has received nothing for over 30 minutes") and len(mailoutbox) == 2
    assert "received nothing" in _banner(agent_client)
    # a Sandbox account has no gateway: only its sandbox phone writes into it
    assert "sandbox phone" in sandbox_account.alert and "gateway" not in sandbox_account.alert
    assert re.search(r"\(last activity [A-Z][a-z]{2} \d{1,2}, \d\d:\d\d\)", sandbox_account.alert), sandbox_account.alert
    assert "An admin can reconnect it" not in _banner(agent_client)  # the session is up: nothing to reconnect
    run_sweeps()  # still silent: still one alert, no new e-mail
    assert len(mailoutbox) == 2

    assert _post(sandbox_account, {"id": "m-1", "from": "+14155550123", "text": "hi"}).status_code == 200
    sandbox_account.refresh_from_db()
    assert sandbox_account.alert == "" and len(mailoutbox) == 4 and "is back" in mailoutbox[-1].subject
    assert "received nothing" not in _banner(agent_client)


def test_a_silence_alert_says_where_to_look_for_the_accounts_backend(location):
    since = timezone.now() - timedelta(hours=2)
    whatsapp = Account(location=location, kind="whatsapp", backend="evolution", name="Shop", quiet_alert_minutes=60)
    assert quiet_alert(whatsapp, since).endswith("Check that the gateway and the phone are online.")
    twilio = Account(location=location, kind="twilio", backend="twilio", name="Line", quiet_alert_minutes=60)
    assert "gateway" not in quiet_alert(twilio, since) and "Twilio" in quiet_alert(twilio, since)


# --- a disconnect a person asked for is no outage --------------------------------------------------
def test_a_disconnect_a_person_asked_for_raises_no_alert_and_a_reported_one_still_does(
        sandbox_account, mailed_admins, admin_client, agent_client, mailoutbox):
    hook_subscription_create(location=sandbox_account.location, url="http://127.0.0.1:9/hook", events=["account.status"])
    assert admin_client.post(f"/accounts/{sandbox_account.pk}/disconnect/").status_code == 302
    sandbox_account.refresh_from_db()
    assert sandbox_account.status == Account.Status.DISCONNECTED
    assert (sandbox_account.alert, mailoutbox) == ("", [])
    assert AccountEvent.objects.filter(account=sandbox_account).first().requested is True
    # what the backend reports of it afterwards is its echo: still nothing
    account_set_status(account=sandbox_account, status=Account.Status.LOGGED_OUT, reason="logged out by the gateway")
    sandbox_account.refresh_from_db()
    assert (sandbox_account.alert, mailoutbox) == ("", [])
    assert "Sales" not in _banner(agent_client)
    assert not WebhookDelivery.objects.filter(event="account.status").exists()

    # started again, then the backend reports it down: an outage as before
    account_connect(account=sandbox_account)
    sandbox_account.refresh_from_db()
    assert sandbox_account.status == Account.Status.CONNECTED
    account_set_status(account=sandbox_account, status=Account.Status.DISCONNECTED, reason="phone offline")
    sandbox_account.refresh_from_db()
    assert sandbox_account.alert.startswith("Sales is disconnected (phone offline)") and len(mailoutbox) == 2
    assert AccountEvent.objects.filter(account=sandbox_account).first().requested is False


def test_the_gateways_logged_out_echo_of_a_disconnect_raises_no_alert(location, mailed_admins, mailoutbox, settings):
    """Evolution answers a logout with webhooks saying the session closed as logged out (401)
    — EvolutionAPI/evolution-api: src/api/integrations/channel/whatsapp/whatsapp.baileys.service.ts
    (connection 'close' with DisconnectReason.loggedOut -> 'logout.instance' and CONNECTION_UPDATE)
    and src/api/services/monitor.service.ts (LOGOUT_INSTANCE) — after a person's Disconnect that
    is no outage; the same webhook on a session nobody took down is one."""
    with EvolutionStandIn(api_key="global-test-key") as gateway:
        settings.EVOLUTION_API_BASE_URL, settings.EVOLUTION_API_KEY = gateway.url, gateway.api_key
        account = account_create(location=location, kind="whatsapp", backend="evolution", name="Shop")
        name = account.gateway_resource

        def post(envelope):
            body = json.dumps(envelope)
            assert Client().post(gateway.webhook_path(name), data=body, content_type="application/json").status_code == 200

        account_connect(account=account)
        post(gateway.link(name, "+14155550100"))
        account.refresh_from_db()
        assert account.status == Account.Status.CONNECTED
        account_disconnect(account=account)
        assert gateway.received("DELETE", f"/instance/logout/{name}")
        post(gateway.connection_update(name, "close", status_reason=401))
        post(gateway.logout_instance(name))
        account.refresh_from_db()
        assert account.status == Account.Status.LOGGED_OUT and (account.alert, mailoutbox) == ("", [])

        account_connect(account=account)
        post(gateway.link(name, "+14155550100"))
        post(gateway.connection_update(name, "close", status_reason=401))  # the phone unlinked it
        account.refresh_from_db()
        assert account.alert.startswith("Shop was logged out") and len(mailoutbox) == 2


def test_no_silence_alert_without_a_quiet_period_or_while_active(sandbox_account, mailoutbox):
    long_ago = timezone.now() - timedelta(days=3)
    Account.objects.filter(pk=sandbox_account.pk).update(quiet_alert_minutes=0, last_webhook_at=long_ago, last_event_at=long_ago)
    assert quiet_accounts_sweep() == 0
    Account.objects.filter(pk=sandbox_account.pk).update(quiet_alert_minutes=60, last_webhook_at=timezone.now() - timedelta(minutes=5))
    assert quiet_accounts_sweep() == 0
    Account.objects.filter(pk=sandbox_account.pk).update(status=Account.Status.DISCONNECTED, last_webhook_at=long_ago)
    assert quiet_accounts_sweep() == 0  # a session that is down has its own alert
    sandbox_account.refresh_from_db()
    assert sandbox_account.alert == ""


def test_a_deleted_account_alerts_nobody(sandbox_account, mailed_admins, agent_client, mailoutbox):
    account_set_status(account=sandbox_account, status=Account.Status.LOGGED_OUT, reason="unlinked")
    assert len(mailoutbox) == 2
    account_archive(account=sandbox_account)
    sandbox_account.refresh_from_db()
    assert sandbox_account.alert == "" and len(mailoutbox) == 2  # no "back" e-mail for a deleted account
    assert "Sales" not in _banner(agent_client)


def test_an_alert_email_whose_alert_is_gone_by_the_time_the_worker_runs_is_not_sent(sandbox_account, mailed_admins, mailoutbox):
    account_set_status(account=sandbox_account, status=Account.Status.DISCONNECTED)
    sandbox_account.refresh_from_db()
    raised_at = sandbox_account.alert_at.isoformat()
    assert alert_email_send(sandbox_account.pk, raised_at, False) == 2  # the same alert still stands: sent
    account_set_status(account=sandbox_account, status=Account.Status.CONNECTED)
    assert alert_email_send(sandbox_account.pk, raised_at, False) == 0


def test_unfiled_events_are_kept_by_the_webhook_path(sandbox_account):
    """The row the diagnostics count: kind unfiled, the reason, the whole body."""
    webhook_events_record(account=sandbox_account, events=[Unfiled(reason="why", envelope={"a": 1}, key="k1")])
    row = InboundEvent.objects.get()
    assert (row.kind, row.status, row.error, row.payload) == ("unfiled", "unfiled", "why", {"reason": "why", "envelope": {"a": 1}})
