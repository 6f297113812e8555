"""The provider contract seen from outside providers/: the registry reads what each backend
declares, a new backend is one module (the Add Account page offers it, asks for its fields,
checks them with it), the shared gateway transport fails the same way for every gateway, and
the account page shows what higher apps register."""
import pytest
from django import forms

import accounts.providers as registry
from accounts import panels
from accounts.models import Account
from accounts.providers import backend_choices, backends_for_kind, get_provider, real_backends, simulated_backend
from accounts.providers.base import Health, Provider, ProviderError, SendResult
from accounts.providers.transport import Gateway
from accounts.services import account_create
from tests.test_guarded_fetch import Site, strict  # noqa: F401  (fixtures)
from whatsnap import guarded_fetch


# --- the registry ----------------------------------------------------------------------------------
def test_the_registry_reads_what_each_provider_declares():
    assert backend_choices() == [(key, get_provider(key).label) for key, _label in backend_choices()]
    for key, _label in backend_choices():
        assert get_provider(key).key == key and set(get_provider(key).kinds) <= set(Account.Kind.values)
    assert backends_for_kind(Account.Kind.WHATSAPP) == ("evolution", "waha", "sandbox")  # the first is the default
    assert backends_for_kind(Account.Kind.IMESSAGE) == ("bluebubbles", "sandbox")
    assert backends_for_kind(Account.Kind.ANDROID_SMS) == ("android_sms", "sandbox")
    assert backends_for_kind(Account.Kind.TWILIO) == ("twilio", "sandbox")
    assert real_backends(Account.Kind.ANDROID_SMS, Account.Kind.IMESSAGE) == ["bluebubbles", "android_sms"]
    assert {simulated_backend(kind) for kind in Account.Kind.values} == {"sandbox"}
    with pytest.raises(LookupError):
        get_provider("carrier-pigeon")


def test_form_fields_are_new_on_every_call():
    for key, _label in backend_choices():
        first, second = get_provider(key).form_fields(), get_provider(key).form_fields()
        assert first.keys() == second.keys() and not any(first[name] is second[name] for name in first)


def test_what_a_client_gives_is_checked_by_the_backend():
    twilio, sandbox = get_provider("twilio"), get_provider("sandbox")
    good = {"account_sid": "AC" + "1" * 32, "auth_token": "t"}
    assert twilio.settings_problems(kind="twilio", phone_number="", credentials=good, config={}) == {}
    assert "Account SID" in twilio.settings_problems(kind="twilio", phone_number="", credentials={**good, "account_sid": "AC1"},
                                                     config={})["credentials"]
    assert "api_key_secret" in twilio.settings_problems(kind="twilio", phone_number="", credentials={**good, "api_key_sid": "SK1"},
                                                        config={})["credentials"]
    assert sandbox.settings_problems(kind="twilio", phone_number="", credentials={}, config={}) == {
        "phone_number": "The simulated Twilio number is required."}
    assert sandbox.settings_problems(kind="android_sms", phone_number="", credentials={}, config={}) == {}
    assert get_provider("android_sms").form_required({"gateway_mode": "cloud"}) == (
        "gateway_username", "gateway_password", "gateway_signing_key")
    assert "gateway_address" in get_provider("android_sms").form_required({"gateway_mode": "local"})


# --- a new backend is one module -------------------------------------------------------------------
class FakeGatewayProvider(Provider):
    key = "fake"
    label = "WhatsApp (a fake gateway)"
    kinds = ("whatsapp",)
    choice_label = "Fake gateway"
    settable_credentials = ("token",)
    required_credentials = ("token",)

    def form_fields(self):
        return {"fake_token": forms.CharField(required=False, label="Fake gateway token")}

    def form_required(self, data):
        return ("fake_token",)

    def form_settings(self, data):
        return {"token": data["fake_token"]}, {}

    def verify(self, *, credentials, config, phone=""):
        if credentials["token"] != "good":
            raise ProviderError("The fake gateway refused the token.", transient=False)
        return "+14155550142"

    def connect(self, account):
        return []

    def disconnect(self, account):
        return None

    def health(self, account):
        return Health(ok=True, detail="fake")

    def send(self, account, *, to, text, media=None, idempotency_key, reply_to=""):
        return SendResult(provider_id=idempotency_key)

    def parse_webhook(self, account, request):
        return []


@pytest.fixture
def fake_backend(monkeypatch):
    monkeypatch.setitem(registry._BACKENDS, "fake", f"{__name__}.FakeGatewayProvider")
    monkeypatch.setattr(registry, "_cache", {})


def test_a_new_backend_is_offered_asked_for_and_checked_by_the_add_account_page(fake_backend, admin_client, location):
    assert backends_for_kind("whatsapp") == ("evolution", "waha", "fake", "sandbox")
    page = admin_client.get("/accounts/add/whatsapp/").content.decode()
    # offered, and the default: it needs no operator setting, which the real gateways lack here
    assert '<option value="fake" selected>Fake gateway</option>' in page and "Fake gateway token" in page

    missing = admin_client.post("/accounts/add/whatsapp/", {"name": "Sales", "backend": "fake"}, HTTP_HX_REQUEST="true")
    assert "Required to connect to your device." in missing.content.decode()
    refused = admin_client.post("/accounts/add/whatsapp/", {"name": "Sales", "backend": "fake", "fake_token": "bad"},
                                HTTP_HX_REQUEST="true")
    assert "The fake gateway refused the token." in refused.content.decode() and not Account.objects.exists()

    assert admin_client.post("/accounts/add/whatsapp/", {"name": "Sales", "backend": "fake", "fake_token": "good"}).status_code == 302
    account = Account.objects.get()
    assert (account.backend, account.kind, account.credentials, account.phone_number) == (
        "fake", "whatsapp", {"token": "good"}, "+14155550142")
    assert admin_client.get(f"/accounts/{account.pk}/").status_code == 200


# --- the gateway transport -------------------------------------------------------------------------
DEVICE = Gateway(service="Test gateway", unauthorized="Test gateway refused the password ({status}).", reason_fields=("error.message",),
                 refused=(401, 403), unreachable="Cannot reach {where}", bad_answer="Cannot use the answer of {where}")
OPERATOR = Gateway(service="Operator gateway", unauthorized="The operator gateway refused its key.", reason_fields=("message",),
                   base_setting="TEST_GATEWAY_BASE_URL", quotable=True)


@pytest.fixture
def gateway():
    server = Site({
        "/ok": (200, {"Content-Type": "application/json"}, b'{"id": "m1"}'),
        "/empty": (200, {}, b""),
        "/html": (200, {"Content-Type": "text/html"}, b"<h1>not json</h1>"),
        "/busy": (503, {"Content-Type": "application/json"}, b'{"error": {"message": "try later"}}'),
        "/denied": (403, {}, b""),
        "/missing": (404, {"Content-Type": "application/json"}, b'{"message": "no such chat", "error": {"message": "chat gone"}}'),
        "/teapot": (418, {"Content-Type": "text/html"}, b"<h1>internal page</h1>"),
        "/big": (200, {}, b"x" * 4096),
        "/slow": (200, {}, [b"a", b"b"]),
    }, delay=1.0)
    yield server
    server.stop()


def test_answers_and_their_errors(gateway, settings):
    settings.TEST_GATEWAY_BASE_URL = gateway.url
    assert DEVICE.json_object(DEVICE.call("GET", "/ok", base=gateway.url)) == {"id": "m1"}
    assert DEVICE.json(DEVICE.call("GET", "/empty", base=gateway.url)) is None
    with pytest.raises(ProviderError, match="Test gateway answered non-JSON") as html:
        DEVICE.json(DEVICE.call("GET", "/html", base=gateway.url))
    assert "<h1>" not in str(html.value)  # what answers at a typed address is never shown
    with pytest.raises(ProviderError, match="answered 503 to GET /busy: try later") as busy:
        DEVICE.call("GET", "/busy", base=gateway.url)
    assert busy.value.transient and not busy.value.ambiguous
    with pytest.raises(ProviderError, match=r"^Test gateway refused the password \(403\)\.$") as denied:
        DEVICE.call("GET", "/denied", base=gateway.url)
    assert not denied.value.transient
    with pytest.raises(ProviderError, match="answered 404 to POST /missing: chat gone") as missing:
        DEVICE.call("POST", "/missing", base=gateway.url, json_body={"x": 1})
    assert not missing.value.transient
    assert DEVICE.call("GET", "/missing", base=gateway.url, ok_statuses=(404,)).status_code == 404
    # a person's device is never quoted; the operator's own gateway is
    with pytest.raises(ProviderError, match="answered 418 to GET /teapot: no reason given$"):
        DEVICE.call("GET", "/teapot", base=gateway.url)
    with pytest.raises(ProviderError, match="answered 418 to GET /teapot: <h1>internal page</h1>$"):
        OPERATOR.call("GET", "/teapot")
    with pytest.raises(ProviderError, match="answered non-JSON: '<h1>not json</h1>'"):
        OPERATOR.json(OPERATOR.call("GET", "/html"))
    # a gateway that has an operator base (the Android cloud relay) called at a typed address
    # (a phone): quoted nowhere, neither an error answer nor a non-JSON body
    with pytest.raises(ProviderError, match="answered 418 to GET /teapot: no reason given$"):
        OPERATOR.call("GET", "/teapot", base=gateway.url)
    with pytest.raises(ProviderError) as typed:
        OPERATOR.json(OPERATOR.call("GET", "/html", base=gateway.url))
    assert "<h1>" not in str(typed.value)


def test_no_answer_and_too_much_answer(gateway, settings):
    closed = Site()
    closed.stop()
    with pytest.raises(ProviderError, match=rf"^Cannot reach {closed.url}: it did not answer \(ConnectError\)\.$") as down:
        DEVICE.call("GET", "/ok", base=closed.url)
    assert down.value.transient and not down.value.ambiguous  # it never got the request
    settings.TEST_GATEWAY_BASE_URL = closed.url
    with pytest.raises(ProviderError, match=rf"^Operator gateway unreachable at {closed.url}: .*[Cc]onnect") as down:
        OPERATOR.call("GET", "/ok")
    small = guarded_fetch.Limits(connect=2.0, total=0.3, max_bytes=1024)
    with pytest.raises(ProviderError, match=f"^Cannot use the answer of {gateway.url}: ") as big:
        DEVICE.call("GET", "/big", base=gateway.url, limits=small)
    assert big.value.ambiguous  # it may have done its work
    with pytest.raises(ProviderError, match="it did not answer") as slow:
        DEVICE.call("POST", "/slow", base=gateway.url, limits=small)
    assert slow.value.transient and slow.value.ambiguous


def test_a_typed_address_is_guarded_and_the_operators_gateway_trusted(gateway, settings, strict):
    with pytest.raises(ProviderError, match="private network") as refused:
        DEVICE.call("GET", "/ok", base=gateway.url)
    assert not refused.value.transient and gateway.requests == []
    settings.TEST_GATEWAY_BASE_URL = gateway.url  # the operator's own, on loopback
    assert OPERATOR.json_object(OPERATOR.call("GET", "/ok")) == {"id": "m1"}
    settings.TEST_GATEWAY_BASE_URL = ""
    with pytest.raises(ProviderError, match="^TEST_GATEWAY_BASE_URL is not set: no Operator gateway configured.$") as unset:
        OPERATOR.call("GET", "/ok")
    assert not unset.value.transient


# --- what higher apps show on the account page -----------------------------------------------------
def test_the_account_page_shows_what_the_apps_above_register(admin_client, location, monkeypatch):
    assert {"queue", "ghl"} <= set(panels._DETAIL_CONTEXT)  # conversations and ghl registered in ready()
    monkeypatch.setattr(panels, "_DETAIL_CONTEXT", dict(panels._DETAIL_CONTEXT))
    seen = []
    panels.register_detail_context("probe", lambda account: seen.append(account.pk))
    account = account_create(location=location, kind="android_sms", backend="sandbox", name="Sales", phone_number="+14155550111")
    assert admin_client.get(f"/accounts/{account.pk}/").status_code == 200
    assert seen == [account.pk]


def test_a_backend_that_lists_no_numbers_says_so():
    sandbox = get_provider("sandbox")
    assert not sandbox.lists_numbers
    with pytest.raises(ProviderError, match="cannot list the numbers of an account; type the number instead") as refused:
        sandbox.list_numbers(credentials={}, config={})
    assert not refused.value.transient
