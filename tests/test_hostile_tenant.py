"""A hostile tenant (or a careless one) tries to reach what is not theirs through the public
interfaces: the REST API with their own token, the pages, the webhooks. Each case is refused
and nothing of the victim's changes. (Issue 15; the guarded fetcher, the admin, membership
and login have modules of their own: test_guarded_fetch, test_admin_scoping,
test_membership_consent, test_login_security.)"""
import pytest
from django.db import IntegrityError, transaction

from accounts.models import Account
from accounts.services import account_connect, account_create
from tests.standins.evolution_standin import EvolutionStandIn, Instance
from tests.standins.waha_standin import Session, WahaStandIn


@pytest.fixture
def evolution(settings):
    with EvolutionStandIn(api_key="global-test-key") as standin:
        settings.EVOLUTION_API_BASE_URL = standin.url
        settings.EVOLUTION_API_KEY = standin.api_key
        yield standin


@pytest.fixture
def waha(settings):
    with WahaStandIn(api_key="waha-test-key") as standin:
        settings.WAHA_API_BASE_URL = standin.url
        settings.WAHA_API_KEY = standin.api_key
        yield standin


# --- 1. a gateway session belongs to one account, forever ---------------------------------------
@pytest.mark.parametrize("backend, key", [("evolution", "instance"), ("waha", "session")])
def test_api_cannot_name_the_gateway_session(api_client, location, other_location, evolution, waha, backend, key):
    victim = account_create(location=other_location, kind="whatsapp", backend=backend, name="Victim")
    attacker = api_client  # location's own token
    response = attacker.post("/api/v1/accounts/", {"kind": "whatsapp", "backend": backend, "name": "Mine",
                                                   "config": {key: victim.gateway_resource}}, format="json")
    assert response.status_code == 400, response.content
    assert key in response.json()["detail"]
    assert not Account.objects.filter(location=location).exists()
    assert not evolution.requests and not waha.requests  # the gateway was never called


def test_api_cannot_set_what_whatsnap_writes_itself(api_client):
    attacker = api_client
    for body in ({"credentials": {"instance_token": "guess"}}, {"config": {"pool_numbers": "+14155550100"}},
                 {"config": {"link_nonce": "x"}}, {"config": {"mode": "ftp"}}):
        payload = {"kind": "android_sms", "backend": "android_sms", "name": "Phone",
                   "credentials": {"username": "u", "password": "p", "signing_key": "k"}, **body}
        if "config" not in body:
            payload["config"] = {"mode": "cloud"}
        payload["credentials"] = {**payload["credentials"], **body.get("credentials", {})}
        response = attacker.post("/api/v1/accounts/", payload, format="json")
        assert response.status_code == 400, (body, response.content)
    assert not Account.objects.exists()


def test_gateway_names_are_random_and_unique_across_locations(location, other_location):
    a = account_create(location=location, kind="whatsapp", backend="sandbox", name="A")
    b = account_create(location=other_location, kind="whatsapp", backend="sandbox", name="A")
    assert a.gateway_resource != b.gateway_resource
    for account in (a, b):
        assert account.gateway_resource != f"whatsnap-{account.pk}"  # the old, guessable name
        assert len(account.gateway_resource.removeprefix("whatsnap-")) == 16  # 64 random bits
    with pytest.raises(IntegrityError), transaction.atomic():
        Account.objects.filter(pk=b.pk).update(gateway_resource=a.gateway_resource)


def test_evolution_never_adopts_an_instance_it_did_not_create(location, evolution):
    account = account_create(location=location, kind="whatsapp", backend="evolution", name="Sales")
    foreign = Instance(name=account.gateway_resource, token="THEIRS", webhook={"url": "https://elsewhere.example/hook"}, number="")
    foreign.state = "open"
    evolution.instances[account.gateway_resource] = foreign
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and "did not create" in account.last_error
    assert [(r.method, r.path) for r in evolution.requests] == [("POST", "/instance/create")]
    assert foreign.webhook == {"url": "https://elsewhere.example/hook"} and foreign.state == "open"
    assert "instance_token" not in account.credentials


def test_evolution_adopts_its_own_instance_after_a_lost_create_answer(location, evolution):
    account = account_create(location=location, kind="whatsapp", backend="evolution", name="Sales")
    account_connect(account=account)  # WhatSnap asked to create it (and the gateway did)
    account_connect(account=account)  # the second create answers 403 "in use": ours, resumed
    account.refresh_from_db()
    assert account.status == "qr_pending"
    assert evolution.received("POST", f"/webhook/set/{account.gateway_resource}")


def test_waha_never_adopts_a_session_it_did_not_create(location, waha):
    account = account_create(location=location, kind="whatsapp", backend="waha", name="Sales")
    waha.sessions[account.gateway_resource] = Session(name=account.gateway_resource, config={"webhooks": []}, status="WORKING")
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and "did not create" in account.last_error
    assert [(r.method, r.path) for r in waha.requests] == [("POST", "/api/sessions")]
    assert waha.sessions[account.gateway_resource].config == {"webhooks": []}


# --- 6. a status event never touches an inbound message nor jams a send queue --------------------
def _inbound(account, pid, text="hello"):
    from datetime import datetime, timezone as dt_tz

    from accounts.providers.base import InboundMessage
    from conversations.services import webhook_events_record

    webhook_events_record(account=account, events=[InboundMessage(
        provider_id=pid, from_phone="+14155550123", name="Ada", text=text, at=datetime.now(dt_tz.utc))])


def test_a_status_event_for_an_inbound_message_changes_nothing(sandbox_account):
    from accounts.providers.base import DeliveryStatus
    from conversations.models import InboundEvent, Message
    from conversations.services import message_send, webhook_events_record

    _inbound(sandbox_account, "in-1")
    for status in ("queued", "failed", "read"):
        webhook_events_record(account=sandbox_account, events=[DeliveryStatus(provider_id="in-1", status=status)])
    received = Message.objects.get(provider_message_id="in-1")
    assert (received.direction, received.status, received.error) == ("inbound", "received", "")
    kept = InboundEvent.objects.filter(kind="status")
    assert kept.count() == 3 and all(e.status == "unfiled" and "message we received" in e.error for e in kept)
    reply = message_send(conversation=received.conversation, text="still flows")
    reply.refresh_from_db()
    assert reply.status in ("sent", "delivered")


def test_the_drainer_passes_over_a_row_it_cannot_claim(sandbox_account, monkeypatch):
    """Rows a claim would skip (here: an inbound message a status event once turned `queued`,
    and a queued row that already has a provider id) are never picked in a loop."""
    from conversations import pacing
    from conversations.models import Message

    _inbound(sandbox_account, "in-2")
    received = Message.objects.get(provider_message_id="in-2")
    Message.objects.filter(pk=received.pk).update(status="queued")  # data written before the fix
    stuck = Message.objects.create(location=received.location, conversation=received.conversation, account=sandbox_account,
                                   direction="outbound", status="queued", text="half-recorded", provider_message_id="prov-x")
    later = []
    monkeypatch.setattr(pacing, "enqueue_account_drain", lambda account_id, at=None: later.append(at))
    reply = Message.objects.create(location=received.location, conversation=received.conversation, account=sandbox_account,
                                   direction="outbound", status="queued", text="must leave")
    sent = pacing.account_drain(account_id=sandbox_account.pk, budget_seconds=pacing.SEND_ALLOWANCE + 1.0)
    reply.refresh_from_db()
    assert sent == 1 and reply.status in ("sent", "delivered")
    assert later == []  # nothing left that it could send: no drain re-queued
    stuck.refresh_from_db()
    assert stuck.status == "queued" and stuck.text == "half-recorded"


# --- 10. webhook bodies are read only for an account that exists --------------------------------
class _CountingStream:
    def __init__(self, raw: bytes):
        import io

        self._raw, self.read_bytes = io.BytesIO(raw), 0

    def read(self, *args):
        chunk = self._raw.read(*args)
        self.read_bytes += len(chunk)
        return chunk

    def readline(self, *args):
        return self.read(*args)


@pytest.mark.parametrize("kind", ["whatsapp", "twilio", "sandbox"])
def test_webhook_for_no_account_is_404_before_the_body_is_read(sandbox_account, kind):
    from django.test import RequestFactory

    from conversations.webhooks import webhook

    body = b"{" + b" " * 3_000_000 + b"}"
    for account_id in (999_999, sandbox_account.pk if kind != "sandbox" else 999_998):
        request = RequestFactory().post(f"/webhooks/{kind}/{account_id}/", data=body, content_type="application/json")
        request._stream = stream = _CountingStream(body)
        response = webhook(request, kind=kind, account_id=account_id)
        assert response.status_code == 404 and stream.read_bytes == 0


def test_webhook_body_limit_is_the_backends(sandbox_account, client):
    big = b"{" + b" " * 300_000 + b"}"  # over WEBHOOK_MAX_BYTES, under the WhatsApp gateways' limit
    response = client.post(f"/webhooks/sandbox/{sandbox_account.pk}/", data=big, content_type="application/json")
    assert response.status_code == 413 and response.json()["code"] == "too_large"


def test_ghl_webhooks_read_no_more_than_their_limit(db):
    from django.test import RequestFactory

    from ghl import webhooks

    body = b"{" + b" " * 3_000_000 + b"}"
    for view, kwargs in ((webhooks.provider_webhook, {}), (webhooks.app_webhook, {}), (webhooks.whatsapp_provider_webhook, {})):
        request = RequestFactory().post("/ghl/webhooks/provider/", data=body, content_type="application/json")
        request._stream = stream = _CountingStream(body)
        request.META.pop("CONTENT_LENGTH")  # chunked: no length announced, the read itself stops
        response = view(request, **kwargs)
        assert response.status_code == 413 and stream.read_bytes <= webhooks.MAX_BODY + 1, view


def test_error_pages_say_why_and_offer_the_way_back(agent_client, outsider_client, sandbox_account):
    from conversations.models import Conversation

    _inbound(sandbox_account, "in-404")
    conversation = Conversation.objects.get()
    missing = outsider_client.get(f"/inbox/{conversation.pk}/")  # another location's conversation
    assert missing.status_code == 404 and 'id="error-page"' in missing.content.decode()
    assert "another location" in missing.content.decode() and 'href="/"' in missing.content.decode()
    refused = agent_client.get("/settings/members/add/")
    assert refused.status_code in (403, 405)
    refused = agent_client.post("/settings/api-keys/", {"name": "x"})
    assert refused.status_code == 403 and "Only location admins" in refused.content.decode()


# --- secrets stay out of logs and sessions -------------------------------------------------------
def test_secrets_in_urls_never_reach_the_log(admin_client):
    """Django logs the path of every 4xx answer: an invitation that fails to sign someone up
    must not write a working join link to the log."""
    import io
    import logging
    import re

    from whatsnap.logs import RedactSecretsFilter

    page = admin_client.post("/settings/invitations/", {"email": "new@example.com", "role": "admin"}, follow=True)
    token = re.search(r"/invitations/([^/<]+)/", page.content.decode()).group(1)
    handler = next(h for h in logging.getLogger().handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters))
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        from django.test import Client

        assert Client().post(f"/invitations/{token}/", {"username": "newcomer", "password": "123"}).status_code == 400
        logging.getLogger("whatsnap.test").warning("GET /webhooks/whatsapp/7/?secret=s3cr3t&x=1 and /ghl/webhooks/provider/3/abcdef/")
    finally:
        handler.setStream(previous)
    logged = stream.getvalue()
    assert "/invitations/…" in logged and token not in logged
    assert "s3cr3t" not in logged and "abcdef" not in logged and "?secret=…&x=1" in logged


def test_a_key_shown_once_waits_encrypted_and_briefly(admin_client, monkeypatch):
    import re

    from django.contrib.sessions.models import Session

    from accounts import location_views

    admin_client.post("/settings/api-keys/", {"name": "CRM"})  # the redirect not followed yet
    stored = "".join(str(s.get_decoded()) for s in Session.objects.all())
    assert "settings-show-once" in stored and "wsn_" not in stored
    page = admin_client.get("/settings/").content.decode()
    assert re.search(r'id="new-key".*?<code>wsn_', page, re.S)
    monkeypatch.setattr(location_views, "SHOW_ONCE_SECONDS", -1)  # the page opened too late
    admin_client.post("/settings/api-keys/", {"name": "CRM 2"})
    assert 'id="new-key"' not in admin_client.get("/settings/").content.decode()


# --- the attachment relay cannot take every web thread ------------------------------------------
def test_attachment_relays_are_capped_so_slow_upstreams_cannot_take_every_thread(agent_client, sandbox_account, files, monkeypatch):
    import threading

    from conversations import views
    from conversations.models import Message

    _inbound(sandbox_account, "in-media")
    Message.objects.filter(provider_message_id="in-media").update(media=[{"url": files.url + "/cat.png", "content_type": "image/png"}])
    message = Message.objects.get(provider_message_id="in-media")
    monkeypatch.setattr(views, "MEDIA_RELAYS", threading.BoundedSemaphore(1))
    monkeypatch.setattr(views, "MEDIA_TURN_WAIT", 0.05)
    first = agent_client.get(f"/inbox/messages/{message.pk}/media/0/")  # relaying, not yet read to the end
    assert first.status_code == 200
    busy = agent_client.get(f"/inbox/messages/{message.pk}/media/0/")
    assert busy.status_code == 503 and busy["Retry-After"] == "5"
    assert b"".join(first.streaming_content) == files.png
    first.close()  # the response ended: its relay is free again
    again = agent_client.get(f"/inbox/messages/{message.pk}/media/0/")
    assert again.status_code == 200 and b"".join(again.streaming_content) == files.png
    again.close()
