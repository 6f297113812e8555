"""Every server-side call to an address a user supplied refuses loopback once the operator's
switches are off (tests/settings.py turns them on for the loopback stand-ins; each test here
turns them off): the inbox's media view (an inbound attachment, and a URL posted through the
API), media handed on with a send, the Android phone's address (local mode) and the BlueBubbles
Mac's, at connect and when the account is added (form and API), and outgoing webhook
deliveries. The operator's own bases stay trusted: the Android cloud mode and Twilio's media,
which the view now fetches with the account's credentials (it answered 500 before)."""
import json

import pytest
from django.db import transaction
from django.test import Client
from twilio.request_validator import RequestValidator

from accounts.models import Account
from accounts.providers import get_provider
from accounts.providers.sandbox import sign
from accounts.services import account_connect, account_create
from conversations.models import Conversation, Message
from conversations.services import message_send
from hooks.models import WebhookDelivery
from hooks.services import hook_event_emit, hook_subscription_create
from tests.standins.android_sms_standin import AndroidSmsStandIn
from tests.standins.bluebubbles_standin import BlueBubblesStandIn
from tests.standins.twilio_standin import TwilioStandIn
from tests.test_api_support import agent_api  # noqa: F401  (fixture)
from tests.test_guarded_fetch import PUBLIC_IP, Site, internet, site, strict  # noqa: F401  (fixtures)

SECRET = b"root:x:0:0 -- what only the server itself can read"
REFUSED = "The address points to a private network (127.0.0.1)"


def sandbox_inbound(account, *, media, pid="in-1"):
    body = json.dumps({"id": pid, "from": "+14155550123", "name": "Ada", "text": "", "media": media}).encode()
    response = Client().post(f"/webhooks/sandbox/{account.pk}/", data=body, content_type="application/json",
                             HTTP_X_SANDBOX_SIGNATURE=sign(account.webhook_secret, body))
    assert response.status_code == 200, response.content
    return Message.objects.get(provider_message_id=pid)


def media_of(client, message, index=0):
    return client.get(f"/inbox/messages/{message.pk}/media/{index}/")


@pytest.fixture
def inside(site):
    """A service on the server's own loopback that no user may read through WhatSnap."""
    site.routes["/secret"] = (200, {"Content-Type": "text/plain"}, SECRET)
    return site


# --- the media view -----------------------------------------------------------------------------
def test_media_view_refuses_an_attachment_on_loopback(sandbox_account, inside, agent_client, settings, strict):
    message = sandbox_inbound(sandbox_account, media=[{"url": inside.url + "/secret", "content_type": "image/png"}])
    response = media_of(agent_client, message)
    assert response.status_code == 502 and REFUSED in response.content.decode()
    assert SECRET not in response.content and inside.requests == []
    settings.MEDIA_ALLOW_PRIVATE_URLS = True  # the operator's choice, for this purpose only
    allowed = media_of(agent_client, message)
    assert allowed.status_code == 200 and b"".join(allowed.streaming_content) == SECRET


def test_a_media_url_posted_through_the_api_is_refused_and_never_fetched(sandbox_account, inside, agent_user, agent_api,
                                                                         agent_client, settings, strict):
    sandbox_inbound(sandbox_account, media=[], pid="hello")
    conversation = Conversation.objects.get()
    Conversation.objects.filter(pk=conversation.pk).update(assignee=agent_user)
    media = [{"url": inside.url + "/secret", "content_type": "image/png"}]
    refused = agent_api.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "see", "media": media}, format="json")
    assert refused.status_code == 400 and REFUSED in json.dumps(refused.json()["errors"]["media"])
    settings.MEDIA_ALLOW_PRIVATE_URLS = True  # stored while allowed (or its name pointed outside then) ...
    posted = agent_api.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "see", "media": media}, format="json")
    assert posted.status_code == 201, posted.json()
    settings.MEDIA_ALLOW_PRIVATE_URLS = False  # ... fetched now: refused
    response = media_of(agent_client, Message.objects.get(pk=posted.json()["id"]))
    assert response.status_code == 502 and REFUSED in response.content.decode() and inside.requests == []


def test_media_view_answers_a_short_reason_never_the_upstreams_body(sandbox_account, site, agent_client):
    site.routes["/gone"] = (404, {"Content-Type": "text/html"}, b"<h1>internal admin panel v1.2</h1>")
    message = sandbox_inbound(sandbox_account, media=[{"url": site.url + "/gone"}])
    response = media_of(agent_client, message)
    assert response.status_code == 502 and b"answered 404" in response.content and b"admin panel" not in response.content


# --- media handed on with a send ----------------------------------------------------------------
@pytest.fixture
def phone():
    with AndroidSmsStandIn() as standin:
        yield standin


def android_account(location, config, name="Shop phone"):
    return account_create(location=location, kind="android_sms", backend="android_sms", name=name, phone_number="+14155550113",
                          credentials={"username": "sms", "password": "phone-pass", "signing_key": "signing-key-123"}, config=config)


def test_a_send_with_a_loopback_media_link_is_refused_before_the_backend(location, phone, inside, settings, strict):
    settings.GATEWAY_ALLOW_PRIVATE_URLS = True  # the phone is on the shop's LAN; media links stay refused
    account = android_account(location, {"mode": "local", "device_url": phone.url})
    account_connect(account=account)
    conversation = Conversation.objects.create(location=location, account=account, contact=_contact(location))
    message = message_send(conversation=conversation, text="our menu", media=[{"url": inside.url + "/secret"}])
    message.refresh_from_db()
    assert message.status == "failed" and message.error.startswith(f"Not sent: {REFUSED}")
    assert phone.received("POST", "/messages") == [] and inside.requests == []


def _contact(location):
    from contacts.models import Contact

    return Contact.objects.create(location=location, phone="+14155550123")


# --- the Android phone's address ----------------------------------------------------------------
def test_android_local_mode_refuses_a_loopback_device_url(location, phone, strict):
    account = android_account(location, {"mode": "local", "device_url": phone.url})
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and REFUSED in account.last_error and "GATEWAY_ALLOW_PRIVATE_URLS" in account.last_error
    assert not get_provider("android_sms").health(account).ok
    assert phone.requests == []  # its credentials never left


def test_android_cloud_mode_is_the_operators_and_keeps_working(location, settings, strict):
    with AndroidSmsStandIn(cloud=True) as cloud:
        settings.SMS_GATEWAY_CLOUD_BASE_URL = cloud.base_url
        account = android_account(location, {"mode": "cloud"})
        account_connect(account=account)
        account.refresh_from_db()
        assert account.status == "connected" and len(cloud.webhooks) == 6


def test_adding_an_android_phone_on_loopback_is_refused_by_the_form_and_the_api(admin_client, api_client, phone, settings, strict):
    form = {"name": "Shop phone", "device": "android_sms", "backend": "device", "phone_number": "+14155550113",
            "gateway_mode": "local", "gateway_address": phone.url.removeprefix("http://"), "gateway_username": "sms",
            "gateway_password": "phone-pass", "gateway_signing_key": "signing-key-123"}
    response = admin_client.post("/accounts/add/p2p/", form)
    assert response.status_code == 200 and REFUSED in response.content.decode()
    api = api_client.post("/api/v1/accounts/", {"kind": "android_sms", "name": "Shop", "phone_number": "+14155550113",
                                                "credentials": {"username": "sms", "password": "p", "signing_key": "k"},
                                                "config": {"mode": "local", "device_url": phone.url}}, format="json")
    assert api.status_code == 400 and REFUSED in api.json()["errors"]["device_url"][0]
    assert not Account.objects.exists() and phone.requests == []
    settings.GATEWAY_ALLOW_PRIVATE_URLS = True  # a phone on the shop's own LAN: allowed by the operator
    assert admin_client.post("/accounts/add/p2p/", form).status_code == 302
    assert Account.objects.get().status == "connected"


# --- the BlueBubbles Mac's address --------------------------------------------------------------
@pytest.fixture
def mac():
    with BlueBubblesStandIn(password="mac-password") as standin:
        yield standin


def mac_account(location, mac):
    return account_create(location=location, kind="imessage", backend="bluebubbles", name="Front desk", phone_number="+14155550112",
                          credentials={"server_url": mac.url, "password": "mac-password"})


def test_bluebubbles_refuses_a_loopback_server_url_and_sends_it_no_password(location, mac, strict):
    account = mac_account(location, mac)
    account_connect(account=account)
    account.refresh_from_db()
    assert account.status == "error" and REFUSED in account.last_error
    assert mac.requests == []


def test_bluebubbles_attachments_are_fetched_only_from_an_allowed_server(location, mac, agent_client, settings, strict):
    account = mac_account(location, mac)
    mac.attachments["att-1"] = (b"png", "image/png")
    payload = mac.new_message(text="", attachments=[{"guid": "att-1", "mimeType": "image/png", "transferName": "a.png"}])
    Client().post(f"/webhooks/imessage/{account.pk}/?secret={account.webhook_secret}", data=json.dumps(payload),
                  content_type="application/json")
    response = media_of(agent_client, Message.objects.get())
    assert response.status_code == 502 and REFUSED in response.content.decode() and mac.requests == []
    settings.GATEWAY_ALLOW_PRIVATE_URLS = True  # a Mac on the shop's LAN
    assert b"".join(media_of(agent_client, Message.objects.get()).streaming_content) == b"png"


def test_adding_a_mac_on_loopback_is_refused_by_the_form_and_the_api(admin_client, api_client, mac, strict):
    response = admin_client.post("/accounts/add/p2p/", {
        "name": "Front desk", "device": "imessage", "backend": "device", "phone_number": "+14155550112",
        "bluebubbles_url": mac.url, "bluebubbles_password": "mac-password", "gateway_mode": "local"})
    assert response.status_code == 200 and REFUSED in response.content.decode()
    api = api_client.post("/api/v1/accounts/", {"kind": "imessage", "name": "Mac", "phone_number": "+14155550112",
                                                "credentials": {"server_url": "http://[::ffff:127.0.0.1]:1234", "password": "p"}},
                          format="json")
    assert api.status_code == 400 and "private network" in api.json()["errors"]["server_url"][0]
    assert not Account.objects.exists() and mac.requests == []


# --- outgoing webhooks --------------------------------------------------------------------------
def test_a_webhook_whose_name_turns_to_loopback_is_not_delivered(location, internet, site, strict):
    site.routes["/hook"] = (200, {}, b"ok")
    internet.routes[(PUBLIC_IP, 80)] = site.port
    internet.names["hooks.example"] = lambda call: [PUBLIC_IP] if call <= 2 else ["127.0.0.1"]
    subscription = hook_subscription_create(location=location, url="http://hooks.example/hook", events=["contact.created"])
    with transaction.atomic():  # lookup 2: public, delivered
        hook_event_emit(location_id=location.pk, event="contact.created", data={})
    assert site.paths() == ["/hook"] and WebhookDelivery.objects.get().status == "succeeded"
    with transaction.atomic():  # lookup 3: loopback
        hook_event_emit(location_id=location.pk, event="contact.created", data={})
    refused = WebhookDelivery.objects.filter(subscription=subscription).order_by("pk").last()
    assert refused.status == "pending" and REFUSED in refused.last_error and "public addresses only" in refused.last_error
    assert site.paths() == ["/hook"] and internet.dialled == [(PUBLIC_IP, 80)]


# --- Twilio MMS attachments (issue #15 point 7) -------------------------------------------------
@pytest.fixture
def twilio(settings):
    with TwilioStandIn() as standin:
        standin.add_number("+14155550199")
        settings.TWILIO_API_BASE_URL, settings.TWILIO_MESSAGING_BASE_URL = standin.url, standin.messaging_url
        yield standin


def twilio_mms(account, media_url: str, content_type: str):
    params = {"MessageSid": "MM" + "d" * 32, "AccountSid": account.credentials["account_sid"], "From": "+14155550123",
              "To": "+14155550199", "Body": "", "NumMedia": "1", "MediaUrl0": media_url, "MediaContentType0": content_type}
    path = f"/webhooks/twilio/{account.pk}/"
    signature = RequestValidator(account.credentials["auth_token"]).compute_signature("http://testserver" + path, params)
    assert Client().post(path, params, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
    return Message.objects.get(provider_message_id=params["MessageSid"])


def test_twilio_mms_attachment_opens_in_the_inbox(location, twilio, agent_client, strict):
    account = account_create(location=location, kind="twilio", backend="twilio", name="Support", phone_number="+14155550199",
                             credentials={"account_sid": twilio.account_sid, "auth_token": twilio.auth_token})
    account_connect(account=account)
    picture = b"\xff\xd8\xff\xe0" + b"jpeg" * 100
    message = twilio_mms(account, twilio.add_media(picture, "image/jpeg"), "image/jpeg")
    response = media_of(agent_client, message)
    assert response.status_code == 200 and b"".join(response.streaming_content) == picture
    assert response["Content-Type"] == "image/jpeg"
    [download] = [r for r in twilio.requests if "/Media/" in r.path]
    assert download.headers["authorization"].startswith("Basic ")  # the account's SID + token, to Twilio only


def test_twilio_credentials_go_to_twilios_origin_only(location, twilio, site, agent_client, settings):
    account = account_create(location=location, kind="twilio", backend="twilio", name="Support", phone_number="+14155550199",
                             credentials={"account_sid": twilio.account_sid, "auth_token": twilio.auth_token})
    site.routes["/a.jpg"] = (200, {"Content-Type": "image/jpeg"}, b"elsewhere")
    message = twilio_mms(account, site.url + "/a.jpg", "image/jpeg")
    assert b"".join(media_of(agent_client, message).streaming_content) == b"elsewhere"
    assert "authorization" not in site.requests[0]["headers"]
