"""Twilio SMS against a loopback stand-in speaking Twilio's REST wire format (both hosts:
api.twilio.com and messaging.twilio.com). tests/test_pipeline_twilio.py covers redelivery,
wrong-token / tampered / unsigned webhooks and out-of-order statuses; this file covers the
backend's contract: connect, number and Messaging Service set-up, A2P, send, statuses, outages."""
import base64
import logging

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from accounts.models import Account
from accounts.providers import get_provider
from accounts.services import account_connect, account_create
from contacts.models import Contact
from conversations.models import Conversation, InboundEvent, Message
from conversations.services import message_retry, message_send
from tests.standins.twilio_standin import TwilioStandIn, form

NUMBER = "+14155550199"
CUSTOMER = "+14155550123"
API_KEY, API_SECRET = "SK" + "7" * 32, "api-key-secret-value"


@pytest.fixture
def twilio(settings):
    with TwilioStandIn(api_keys={API_KEY: API_SECRET}) as standin:
        standin.add_number(NUMBER)
        settings.TWILIO_API_BASE_URL, settings.TWILIO_MESSAGING_BASE_URL = standin.url, standin.messaging_url
        yield standin


def make_account(location, twilio, *, phone=NUMBER, token=None, config=None, **credentials):
    return account_create(
        location=location, kind="twilio", backend="twilio", name="Support", phone_number=phone, config=config or {},
        credentials={"account_sid": twilio.account_sid, "auth_token": token or twilio.auth_token, **credentials},
    )


def connected(location, twilio, **kwargs) -> Account:
    account = make_account(location, twilio, **kwargs)
    account_connect(account=account)
    account.refresh_from_db()
    return account


def urls(account) -> tuple[str, str]:
    return f"http://testserver/webhooks/twilio/{account.pk}/", f"http://testserver/webhooks/twilio/{account.pk}/status/"


def signed_post(account, params, *, token=None, status=False):
    path = f"/webhooks/twilio/{account.pk}/" + ("status/" if status else "")
    signature = RequestValidator(token or account.credentials["auth_token"]).compute_signature("http://testserver" + path, params)
    return Client().post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)


def inbound(account, *, to=NUMBER, sid="SM" + "c" * 32, body="Hello?", **extra):
    params = {"MessageSid": sid, "AccountSid": account.credentials["account_sid"], "From": CUSTOMER, "To": to,
              "Body": body, "NumMedia": "0", **extra}
    return signed_post(account, params)


def basic(user, password) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def rows():
    return InboundEvent.objects.count(), Contact.objects.count(), Message.objects.count()


# --- connect: credentials and number -------------------------------------------------------------
def test_connect_checks_credentials_and_points_the_number_at_our_webhooks(location, twilio):
    account = connected(location, twilio)
    assert account.status == "connected" and account.phone_number == NUMBER and account.last_error == ""
    number = twilio.number(NUMBER)
    inbound_url, status_url = urls(account)
    assert (number["sms_url"], number["sms_method"], number["status_callback"]) == (inbound_url, "POST", status_url)
    assert account.config["phone_number_sid"] == number["sid"]
    assert twilio.received("GET", f"/2010-04-01/Accounts/{twilio.account_sid}.json")
    assert {r.headers["authorization"] for r in twilio.requests} == {basic(twilio.account_sid, twilio.auth_token)}
    update = twilio.received("POST", f"/2010-04-01/Accounts/{twilio.account_sid}/IncomingPhoneNumbers/{number['sid']}.json")
    assert form(update[0])["SmsUrl"] == [inbound_url]


def test_api_key_credentials_are_used_for_the_rest_calls(location, twilio):
    account = connected(location, twilio, api_key_sid=API_KEY, api_key_secret=API_SECRET)
    assert account.status == "connected"
    assert {r.headers["authorization"] for r in twilio.requests} == {basic(API_KEY, API_SECRET)}


def test_api_key_with_wrong_secret_is_refused(location, twilio):
    account = connected(location, twilio, api_key_sid=API_KEY, api_key_secret="wrong")
    assert account.status == "error" and "Twilio refused the credentials" in account.last_error


def test_refused_credentials_are_an_error_with_reason_and_change_nothing(location, twilio):
    account = connected(location, twilio, token="wrong-token")
    assert account.status == "error" and "Twilio refused the credentials" in account.last_error and "Authenticate" in account.last_error
    assert account.events.first().to_status == "error"
    assert [r.method for r in twilio.requests] == ["GET"]
    assert twilio.number(NUMBER)["sms_url"] == ""


def test_a_number_not_on_the_twilio_account_is_refused_clearly(location, twilio):
    account = connected(location, twilio, phone="+14155550100")
    assert account.status == "error"
    assert "+14155550100 is not one of this Twilio account's phone numbers" in account.last_error
    assert not [r for r in twilio.requests if r.method == "POST"]


def test_without_a_number_the_accounts_only_number_is_picked(location, twilio):
    account = connected(location, twilio, phone="")
    assert (account.status, account.phone_number) == ("connected", NUMBER)


def test_without_a_number_several_numbers_must_be_chosen_from(location, twilio):
    twilio.add_number("+14155550177")
    account = connected(location, twilio, phone="")
    assert account.status == "error" and "several phone numbers" in account.last_error
    assert NUMBER in account.last_error and "+14155550177" in account.last_error


def test_a_number_without_sms_is_refused(location, twilio):
    twilio.add_number("+14155550166", sms=False)
    account = connected(location, twilio, phone="+14155550166")
    assert account.status == "error" and "cannot send or receive SMS" in account.last_error


def test_twilio_down_connect_marks_account_error_with_reason(location, twilio):
    twilio.down()
    account = connected(location, twilio)
    assert account.status == "error" and "Twilio is unreachable" in account.last_error
    assert not get_provider("twilio").health(account).ok


def test_twilio_500_on_connect_is_an_error_with_reason(location, twilio):
    twilio.fail_with(500)
    account = connected(location, twilio)
    assert account.status == "error" and "Twilio error 500" in account.last_error


def test_health_sees_a_number_pointed_elsewhere(location, twilio, admin_client):
    account = connected(location, twilio)
    assert get_provider("twilio").health(account).ok
    twilio.number(NUMBER)["sms_url"] = "https://elsewhere.example/sms"
    health = get_provider("twilio").health(account)
    assert not health.ok and "https://elsewhere.example/sms" in health.detail and "Reconnect" in health.detail
    html = admin_client.get(f"/accounts/{account.pk}/diagnostics/").content.decode()
    assert "Inbound webhook points at WhatSnap" in html and "elsewhere.example" in html
    assert not [r for r in twilio.requests if r.method == "POST" and "IncomingPhoneNumbers/" in r.path][1:]  # checks change nothing


# --- the Add Account page ------------------------------------------------------------------------
def add_form(twilio, **fields):
    return {"name": "Support", "backend": "twilio", "phone_number": NUMBER, "account_sid": twilio.account_sid,
            "auth_token": twilio.auth_token, **fields}


def test_add_page_checks_twilio_before_saving(admin_client, twilio):
    response = admin_client.post("/accounts/add/twilio/", add_form(twilio, auth_token="wrong"), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Twilio refused the credentials" in response.content.decode()
    response = admin_client.post("/accounts/add/twilio/", add_form(twilio, phone_number="+1 415 555 0100"), HTTP_HX_REQUEST="true")
    assert "+14155550100 is not one of this Twilio account" in response.content.decode()
    assert not Account.objects.exists()
    assert "wrong" not in response.content.decode() and twilio.auth_token not in response.content.decode()


def test_add_page_connects_and_detail_shows_the_number(admin_client, twilio):
    response = admin_client.post("/accounts/add/twilio/", add_form(twilio, phone_number=""))
    assert response.status_code == 302, response.content.decode()
    account = Account.objects.get()
    assert (account.status, account.phone_number) == ("connected", NUMBER)
    assert account.credentials == {"account_sid": twilio.account_sid, "auth_token": twilio.auth_token}
    assert twilio.number(NUMBER)["sms_url"] == urls(account)[0]
    html = admin_client.get(response["Location"]).content.decode()
    assert 'id="twilio-numbers"' in html and f"<code>{NUMBER}</code>" in html and "a2p-status" not in html


def test_add_page_api_key_needs_both_parts(admin_client, twilio):
    response = admin_client.post("/accounts/add/twilio/", add_form(twilio, api_key_sid=API_KEY), HTTP_HX_REQUEST="true")
    assert "Give both the API Key SID and its secret." in response.content.decode()
    assert not twilio.requests and not Account.objects.exists()


# --- Messaging Service: pool, webhooks, A2P ------------------------------------------------------
def test_messaging_service_gets_our_webhooks_and_its_pool_and_a2p_state_are_kept(location, twilio, admin_client):
    service = twilio.add_service(numbers=("+14155550101", "+14155550102"), campaign_status="IN_PROGRESS")
    service["use_inbound_webhook_on_number"] = True  # the Console's "defer to sender's webhook"
    account = connected(location, twilio, phone="", config={"messaging_service_sid": service["sid"]})
    inbound_url, status_url = urls(account)
    assert account.status == "connected" and account.phone_number == "+14155550101"
    assert (service["inbound_request_url"], service["inbound_method"], service["status_callback"]) == (inbound_url, "POST", status_url)
    assert service["use_inbound_webhook_on_number"] is False
    assert account.config["pool_numbers"] == ["+14155550101", "+14155550102"]
    assert account.config["a2p_status"] == "IN_PROGRESS"
    assert twilio.number("+14155550102")["sms_url"] == ""  # the service's URL applies, numbers are left alone
    assert twilio.messaging.received("GET", f"/v1/Services/{service['sid']}/Compliance/Usa2p")
    assert not twilio.received("GET", f"/v1/Services/{service['sid']}")  # the API host is not asked messaging calls
    html = admin_client.get(f"/accounts/{account.pk}/").content.decode()
    assert service["sid"] in html and "<code>+14155550101</code>" in html and "<code>+14155550102</code>" in html
    assert '<span class="bad" id="a2p-status">IN_PROGRESS</span>' in html and "until the campaign is verified" in html


def test_a2p_verified_and_not_registered_are_shown(location, twilio, admin_client):
    verified = twilio.add_service(numbers=("+14155550101",), campaign_status="VERIFIED")
    account = connected(location, twilio, phone="", config={"messaging_service_sid": verified["sid"]})
    html = admin_client.get(f"/accounts/{account.pk}/").content.decode()
    assert '<span class="ok" id="a2p-status">VERIFIED</span>' in html
    bare = twilio.add_service(numbers=("+14155550103",))
    other = account_create(location=location, kind="twilio", backend="twilio", name="Other", credentials=account.credentials,
                           config={"messaging_service_sid": bare["sid"]})
    account_connect(account=other)
    other.refresh_from_db()
    assert other.config["a2p_status"] == "NOT_REGISTERED"
    assert "No US A2P 10DLC campaign" in admin_client.get(f"/accounts/{other.pk}/").content.decode()


def test_a_number_outside_the_service_pool_is_refused(location, twilio):
    service = twilio.add_service(numbers=("+14155550101",))
    account = connected(location, twilio, phone=NUMBER, config={"messaging_service_sid": service["sid"]})
    assert account.status == "error" and f"{NUMBER} is not in the sender pool" in account.last_error
    assert service["inbound_request_url"] is None


def test_an_unknown_messaging_service_is_refused(location, twilio):
    account = connected(location, twilio, config={"messaging_service_sid": "MG" + "0" * 32})
    assert account.status == "error" and "is not in this Twilio account" in account.last_error


def test_inbound_to_any_pool_number_reaches_the_account(location, twilio):
    service = twilio.add_service(numbers=("+14155550101", "+14155550102"))
    account = connected(location, twilio, phone="", config={"messaging_service_sid": service["sid"]})
    assert inbound(account, to="+14155550102", MessagingServiceSid=service["sid"]).status_code == 200
    assert inbound(account, to="+14155550109", sid="SM" + "d" * 32, MessagingServiceSid=service["sid"]).status_code == 200
    contact = Contact.objects.get()
    assert contact.phone == CUSTOMER and [t.name for t in contact.tags.all()] == ["whatsnap-account-support"]
    assert Message.objects.filter(account=account, direction="inbound").count() == 2


def test_webhook_for_another_twilio_account_is_refused_even_signed(location, twilio):
    account = connected(location, twilio)
    params = {"MessageSid": "SM" + "e" * 32, "AccountSid": "AC" + "9" * 32, "From": CUSTOMER, "To": NUMBER, "Body": "x"}
    assert signed_post(account, params).status_code == 403
    assert rows() == (0, 0, 0)


# --- send and statuses -------------------------------------------------------------------------
def test_send_records_the_sid_and_asks_for_status_callbacks(location, twilio):
    account = connected(location, twilio)
    assert inbound(account).status_code == 200
    message = message_send(conversation=Conversation.objects.get(), text="We open at 9.",
                           media=[{"url": "https://cdn.example/menu.jpg", "content_type": "image/jpeg"}])
    message.refresh_from_db()
    (sent,) = twilio.messages
    assert message.provider_message_id == sent["sid"] and sent["sid"].startswith("SM") and message.status == "sent"
    assert (sent["to"], sent["from"], sent["body"]) == (CUSTOMER, NUMBER, "We open at 9.")
    assert sent["status_callback"] == urls(account)[1]
    assert sent["media_url"] == ["https://cdn.example/menu.jpg"]


def test_send_through_a_messaging_service(location, twilio):
    service = twilio.add_service(numbers=("+14155550101",))
    account = connected(location, twilio, phone="", config={"messaging_service_sid": service["sid"]})
    inbound(account, to="+14155550101")
    message = message_send(conversation=Conversation.objects.get(), text="hi")
    message.refresh_from_db()
    (sent,) = twilio.messages
    assert (sent["messaging_service_sid"], sent["from"], sent["status"]) == (service["sid"], None, "accepted")
    assert message.provider_message_id == sent["sid"] and message.status == "sent"


def test_status_callbacks_update_delivery_status(location, twilio):
    account = connected(location, twilio)
    inbound(account)
    first = message_send(conversation=Conversation.objects.get(), text="one")
    second = message_send(conversation=Conversation.objects.get(), text="two")
    first.refresh_from_db(), second.refresh_from_db()
    sid = account.credentials["account_sid"]
    ok = signed_post(account, {"MessageSid": first.provider_message_id, "AccountSid": sid, "MessageStatus": "delivered"}, status=True)
    bad = signed_post(account, {"MessageSid": second.provider_message_id, "AccountSid": sid, "MessageStatus": "undelivered",
                                "ErrorCode": "30007"}, status=True)
    assert ok.status_code == bad.status_code == 200
    first.refresh_from_db(), second.refresh_from_db()
    assert first.status == "delivered"
    assert second.status == "failed" and second.error == "Twilio error 30007"


def test_twilio_error_is_retried_with_backoff_and_sends_once(location, twilio, pacing_clock):
    from conversations.pacing import account_drain

    account = connected(location, twilio)
    inbound(account)
    twilio.fail_with(500)
    message = message_send(conversation=Conversation.objects.get(), text="are you there?")
    message.refresh_from_db()
    assert message.status == "queued" and "stand-in failure" in message.error and message.provider_message_id == ""
    assert twilio.messages == []
    twilio.recover()
    pacing_clock.sleep(16)
    account_drain(account_id=account.pk)
    message.refresh_from_db()
    (sent,) = twilio.messages
    assert message.status == "sent" and message.provider_message_id == sent["sid"] and message.error == ""


def test_twilio_down_send_waits_for_a_retry_with_the_reason(location, twilio):
    account = connected(location, twilio)
    inbound(account)
    twilio.down()
    message = message_send(conversation=Conversation.objects.get(), text="anyone?")
    message.refresh_from_db()
    assert message.status == "queued" and message.send_attempts == 1 and "Twilio is unreachable" in message.error


def test_a_from_number_twilio_does_not_know_fails_with_twilios_reason(location, twilio):
    account = connected(location, twilio)
    inbound(account)
    Account.objects.filter(pk=account.pk).update(phone_number="+14155550100")
    message = message_send(conversation=Conversation.objects.get(), text="x")
    message.refresh_from_db()
    assert message.status == "failed" and "Twilio error 21606" in message.error


# --- secrets ----------------------------------------------------------------------------------
def test_secrets_never_reach_the_logs(location, twilio, caplog):
    caplog.set_level(logging.DEBUG)
    account = connected(location, twilio, api_key_sid=API_KEY, api_key_secret=API_SECRET)
    inbound(account)
    message_send(conversation=Conversation.objects.get(), text="x")
    bad = account_create(location=location, kind="twilio", backend="twilio", name="Other",
                         credentials={"account_sid": twilio.account_sid, "auth_token": "wrong-token-value"})
    account_connect(account=bad)
    text = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert twilio.messages and caplog.records
    for secret in (twilio.auth_token, API_SECRET, "wrong-token-value"):
        assert secret not in text


def test_add_form_loads_the_accounts_sms_numbers_into_a_picker(admin_client, agent_client, twilio):
    twilio.add_number("+14155550177")
    twilio.add_number("+14155550188", sms=False)
    form = add_form(twilio, phone_number="")
    response = admin_client.post("/accounts/add/twilio/numbers/", form, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<select" in html
    assert NUMBER in html and "+14155550177" in html and "+14155550188" not in html  # not SMS-capable
    assert twilio.auth_token not in html
    bad = admin_client.post("/accounts/add/twilio/numbers/", add_form(twilio, auth_token="wrong"), HTTP_HX_REQUEST="true").content.decode()
    assert "<select" not in bad and "refused the credentials" in bad
    assert agent_client.post("/accounts/add/twilio/numbers/", form).status_code == 403
    page = admin_client.get("/accounts/add/twilio/").content.decode()
    assert 'id="load-twilio-numbers"' in page
