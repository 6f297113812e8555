"""Issue 21 reviewed as a hostile tenant: a paying tenant of another location, a GHL sub-account
admin of another agency, another marketplace app's developer, an anonymous internet user.
Each probe is a test; the holes it found are fixed in ghl/ and whatsnap/framing.py.

Wire-format facts: GoHighLevel/highlevel-api-docs — docs/oauth/WebhookAuthentication.md (ONE
public key signs every GHL webhook, of every marketplace app: another app's developer holds
genuinely signed bodies), docs/webhook events/AppInstall.md and AppUninstall.md (every example
carries `appId`), docs/webhook events/ProviderOutboundMessage.md (no appId, no provider id),
docs/marketplace modules/shared_secret_customJS_customPages.md (the user data: userId, companyId,
role 'admin' | 'user', activeLocation, email — e-mails are whatever a GHL admin typed)."""
import json
import logging

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.db import connection as db
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

from accounts.models import Location, Membership
from ghl.models import GhlCompany, GhlConnection, GhlInstall, OutboxItem, WebhookReceipt
from tests.test_ghl import ghl, install, installed, post_signed  # noqa: F401  (the stand-in fixtures)
from tests.test_ghl_embed import SECRET, cryptojs_encrypt, user_payload
from whatsnap import waker
from whatsnap.asgi import application
from whatsnap.live import location_group
from whatsnap.tasks import run_now_or_at

pytestmark = pytest.mark.django_db(transaction=True)

GHL_X = "yLKVZpNppIdYpah4RjNE"  # the victim's GHL sub-account
COMPANY = "GNb7aIv4rQFVb9iwNl5K"
SIGN_IN = "/ghl/app/sign-in/"


@pytest.fixture(autouse=True)
def embed_settings(settings):
    settings.GHL_SHARED_SECRET = SECRET
    settings.GHL_EMBED_ORIGINS = ["https://app.gohighlevel.com", "https://app.leadconnectorhq.com"]


@pytest.fixture
def connected(location):
    location.ghl_location_id = GHL_X
    location.save()
    return GhlConnection.objects.create(location=location, company_id=COMPANY, installed_ghl_location_id=GHL_X,
                                        secrets={"access_token": "victim-at", "refresh_token": "victim-rt"})


def encrypted(**overrides) -> str:
    return cryptojs_encrypt(json.dumps(user_payload(**overrides)), SECRET)


def sign_in(client, payload, **extra):
    return client.post(SIGN_IN, json.dumps({"encryptedData": payload}), content_type="application/json", **extra)


def signed_in_user(client):
    return client.get("/inbox/").wsgi_request.user


# --- the OAuth callback without state -----------------------------------------------------------

def test_a_marketplace_install_signs_nobody_in_and_leaves_a_logged_in_visitor_where_they_were(ghl, outsider_client, other_location):  # noqa: F811
    """Login CSRF: the attacker installs in their own sub-account and sends the victim the
    redirect with the attacker's code. Nobody is signed in, the visitor gains no membership."""
    anonymous = Client()
    response = anonymous.get("/ghl/oauth/callback", {"code": ghl.issue_code("ghl-attacker")})
    assert response.status_code == 200 and "_auth_user_id" not in anonymous.session
    page = response.content.decode()
    token = GhlConnection.objects.get(location__ghl_location_id="ghl-attacker").secrets["access_token"]
    assert token not in page and "rt-" not in page  # the installed page shows no token
    visitor = outsider_client.get("/ghl/oauth/callback", {"code": ghl.issue_code("ghl-attacker-2")})
    assert visitor.status_code == 200
    new = Location.objects.get(ghl_location_id="ghl-attacker-2")
    assert not Membership.objects.filter(location=new).exists()
    assert outsider_client.get("/inbox/").wsgi_request.location == other_location


def test_an_install_from_another_tenant_cannot_take_a_connected_location_nor_learn_its_name(ghl, connected, location, outsider_client, other_location):  # noqa: F811
    """The admin of another location starts an install from WhatSnap and picks the victim's
    GHL sub-account: refused, nothing half-written, and the refusal does not name the victim."""
    before = dict(connected.secrets)
    response, _ = install(outsider_client, ghl, ghl_location_id=GHL_X)
    assert response.status_code == 400
    assert location.name not in response.content.decode()
    connected.refresh_from_db()
    other_location.refresh_from_db()
    assert connected.secrets == before and connected.location_id == location.pk
    assert other_location.ghl_location_id == "" and not GhlConnection.objects.filter(location=other_location).exists()


def test_an_error_redirect_or_a_junk_code_writes_nothing(ghl):  # noqa: F811
    for query in ({"error": "access_denied", "error_description": "<script>x</script>"}, {"code": "junk"}, {}):
        response = Client().get("/ghl/oauth/callback", query)
        assert response.status_code == 400 and b"<script>x" not in response.content
    assert not Location.objects.exists() and not GhlConnection.objects.exists() and not GhlCompany.objects.exists()


def test_a_location_its_admin_disconnected_is_not_reconnected_by_whoever_installs_that_sub_account_later(ghl, admin_client, location):  # noqa: F811
    """Tenant A connected its location to GHL sub-account X, then left that agency and pressed
    Disconnect. The agency installing the app in X again must not get A's location (and, through
    the custom page, admin seats in it) back."""
    install(admin_client, ghl, ghl_location_id="ghl-x")
    admin_client.post("/ghl/actions/disconnect/")
    location.refresh_from_db()
    assert location.ghl_location_id == ""
    Client().get("/ghl/oauth/callback", {"code": ghl.issue_code("ghl-x")})
    location.refresh_from_db()
    assert location.ghl_location_id == ""

# --- INSTALL / UNINSTALL ---------------------------------------------------------------------

def test_lifecycle_events_of_another_app_or_without_an_app_id_change_nothing(ghl, connected, location, settings):  # noqa: F811
    """GHL signs every app's webhooks with one key: another app's developer holds a signed
    UNINSTALL for our tenant's sub-account (their app was removed there) and replays it."""
    settings.GHL_APP_ID = ghl.app_id
    other_app = post_signed(ghl, "/ghl/webhooks/app/", {"type": "UNINSTALL", "appId": "another-app", "locationId": GHL_X})
    no_app = post_signed(ghl, "/ghl/webhooks/app/", {"type": "UNINSTALL", "locationId": GHL_X})
    assert other_app.status_code == no_app.status_code == 200
    assert "ignored" in other_app.json()["outcome"] and "ignored" in no_app.json()["outcome"]
    connected.refresh_from_db()
    location.refresh_from_db()
    assert connected.status == "connected" and location.ghl_location_id == GHL_X
    unsigned = Client().post("/ghl/webhooks/app/", json.dumps({"type": "UNINSTALL", "appId": ghl.app_id, "locationId": GHL_X}),
                             content_type="application/json")
    assert unsigned.status_code == 403


def test_an_agency_uninstall_touches_only_what_that_agency_connected(ghl, connected, location, settings):  # noqa: F811
    settings.GHL_APP_ID = ghl.app_id
    ghl.add_location("ghl-b1", name="B's client", company_id="agency-b")
    Client().get("/ghl/oauth/callback", {"code": ghl.issue_company_code("agency-b", locations=["ghl-b1"])})
    # agency A (unknown here) and agency B, each uninstalling at agency level
    unknown = post_signed(ghl, "/ghl/webhooks/app/", {"type": "UNINSTALL", "appId": ghl.app_id, "companyId": COMPANY})
    assert unknown.json()["outcome"] == "unknown agency"
    post_signed(ghl, "/ghl/webhooks/app/", {"type": "UNINSTALL", "appId": ghl.app_id, "companyId": "agency-b"})
    connected.refresh_from_db()
    assert connected.status == "connected"  # installed on its own: untouched
    assert GhlConnection.objects.get(location__name="B's client").status == "uninstalled"


def test_an_install_webhook_naming_another_agencys_sub_account_connects_nothing(ghl, connected, location, settings):  # noqa: F811
    """Agency B's INSTALL names the victim's sub-account: GHL gives B no token for it."""
    settings.GHL_APP_ID = ghl.app_id
    Client().get("/ghl/oauth/callback", {"code": ghl.issue_company_code("agency-b", locations=[])})
    before = dict(connected.secrets)
    post_signed(ghl, "/ghl/webhooks/app/", {"type": "INSTALL", "appId": ghl.app_id, "companyId": "agency-b", "locationId": GHL_X})
    from ghl import installs
    installs.installs_run_for(GhlCompany.objects.get(company_id="agency-b").pk)
    assert GhlInstall.objects.get(ghl_location_id=GHL_X).status == "failed"
    connected.refresh_from_db()
    assert connected.secrets == before and connected.agency is None


def test_a_replayed_webhook_id_is_acted_on_once(ghl, connected, settings):  # noqa: F811
    settings.GHL_APP_ID = ghl.app_id
    payload = {"type": "UNINSTALL", "appId": ghl.app_id, "locationId": "ghl-nobody", "webhookId": "wh-1",
               "timestamp": timezone.now().isoformat()}
    post_signed(ghl, "/ghl/webhooks/app/", payload)
    assert post_signed(ghl, "/ghl/webhooks/app/", payload).json()["outcome"] == "duplicate"
    stale = {**payload, "webhookId": "wh-2", "timestamp": (timezone.now() - timezone.timedelta(hours=1)).isoformat()}
    assert post_signed(ghl, "/ghl/webhooks/app/", stale).status_code == 403
    assert WebhookReceipt.objects.count() == 1


# --- the one Delivery URL ------------------------------------------------------------------------

def test_deliveries_unsigned_or_for_an_unknown_sub_account_store_nothing(ghl, connected, location):  # noqa: F811
    payload = ghl.provider_outbound(location_id=GHL_X, contact_id="c1", text="hi", phone="+14155550123")
    for path in ("/ghl/webhooks/provider/", "/ghl/webhooks/provider/whatsapp/"):
        assert Client().post(path, json.dumps(payload), content_type="application/json").status_code == 403
        assert Client().post(path, json.dumps(payload), content_type="application/json",
                             HTTP_X_GHL_SIGNATURE="AAAA").status_code == 403
    unknown = post_signed(ghl, "/ghl/webhooks/provider/", {**payload, "locationId": "ghl-not-ours"})
    assert unknown.status_code == 404
    assert not OutboxItem.objects.exists()
    routed = post_signed(ghl, "/ghl/webhooks/provider/", payload)
    assert routed.json()["outcome"] == "queued" and OutboxItem.objects.get().location == location


# --- sign-in from inside GHL ---------------------------------------------------------------------

def test_a_ghl_user_whose_email_matches_an_admin_does_not_become_that_admin(connected, location):
    """A GHL user (role 'user') whose e-mail matches a WhatSnap admin of this location only — a
    GHL admin typed it, or the user edited their own profile — is linked to that admin by the
    user sync. Signing in must not hand the agent-level GHL user the admin's login."""
    boss = get_user_model().objects.create_user(username="boss", email="boss@example.com", password="pw-boss-123456")
    Membership.objects.create(user=boss, location=location, role=Membership.Role.ADMIN)
    from ghl.models import GhlUser
    GhlUser.objects.create(location=location, ghl_user_id="MKQJ7wOVVmNOMvrnKKKK", email="boss@example.com", user=boss)
    client = Client()
    assert sign_in(client, encrypted(role="user", email="boss@example.com")).status_code == 200
    user = signed_in_user(client)
    assert user != boss and user.username.startswith("ghl:")
    assert Membership.objects.get(user=user, location=location).role == Membership.Role.AGENT


def test_a_login_made_in_advance_under_a_ghl_users_dedicated_name_is_not_handed_over(connected, location, other_location):
    """A login named ghl:<victim location>:<GHL user id> with a password someone knows (the
    services refuse such names now — test_no_person_can_make_a_login_with_a_ghl_dedicated_name —
    so here it is made below them, as an older version or an operator's shell could have), then
    that GHL user opens WhatSnap in GHL."""
    from django.contrib.auth import get_user_model

    trap = get_user_model().objects.create_user(username=f"ghl:{location.pk}:MKQJ7wOVVmNOMvrnKKKK", password="trap-password-123456")
    Membership.objects.create(user=trap, location=other_location, role=Membership.Role.ADMIN)
    client = Client()
    response = sign_in(client, encrypted(role="admin"))
    assert response.status_code == 403
    assert not Membership.objects.filter(user=trap, location=location).exists()
    assert signed_in_user(client).is_anonymous


def test_a_ghl_admin_cannot_borrow_a_whatsnap_admin_of_another_location(connected, location, other_location, outsider):
    outsider.email = "outsider@example.com"
    outsider.save()
    Membership.objects.create(user=outsider, location=location, role=Membership.Role.AGENT)
    from ghl.models import GhlUser
    GhlUser.objects.create(location=location, ghl_user_id="MKQJ7wOVVmNOMvrnKKKK", email="outsider@example.com", user=outsider)
    client = Client()
    sign_in(client, encrypted(role="admin", email="outsider@example.com"))
    assert signed_in_user(client) != outsider
    assert Membership.objects.get(user=outsider, location=other_location).role == Membership.Role.ADMIN


@pytest.mark.parametrize("body", [
    b"x" * 200_000, b"not json", b"[1, 2]", json.dumps({"encryptedData": ["a"]}).encode(),
    json.dumps({"encryptedData": {"userId": "MKQJ7wOVVmNOMvrnKKKK"}}).encode(),  # plaintext user data
    json.dumps({"encryptedData": "U2FsdGVkX1" + "A" * 20000}).encode(),
])
def test_garbled_or_oversized_payloads_sign_nobody_in(connected, body):
    client = Client()
    response = client.post(SIGN_IN, body, content_type="application/json")
    assert response.status_code == 400
    assert signed_in_user(client).is_anonymous and not get_user_model().objects.filter(username__startswith="ghl:").exists()


def test_user_data_naming_another_sub_account_or_agency_lands_nowhere_else(connected, location, other_location):
    other_location.ghl_location_id = "OtherGhlLocation0000"
    other_location.save()
    GhlConnection.objects.create(location=other_location, company_id="OtherAgency000000000", installed_ghl_location_id="OtherGhlLocation0000")
    client = Client()
    # our agency's user naming the other agency's sub-account: companyId does not match
    assert sign_in(client, encrypted(role="admin", activeLocation="OtherGhlLocation0000")).status_code == 403
    assert not Membership.objects.filter(location=other_location).exists()


def test_a_pinned_session_reaches_no_other_location_through_api_admin_or_socket(connected, location, other_location):
    client = Client()
    sign_in(client, encrypted(role="admin"))
    user = signed_in_user(client)
    Membership.objects.create(user=user, location=other_location, role=Membership.Role.ADMIN)
    assert client.get("/api/v1/contacts/").status_code in (401, 403)  # the API takes API keys, not this session
    admin = client.get("/admin/")
    assert admin.status_code == 302 and "/admin/login/" in admin["Location"]
    session = client.session
    session["location_id"] = other_location.pk
    session.save()
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()

    async def probe():
        socket = WebsocketCommunicator(application, "/ws/live/", headers=[(b"cookie", cookie), (b"origin", b"http://testserver")])
        connected_, _ = await socket.connect()
        assert connected_
        layer = get_channel_layer()
        await layer.group_send(location_group(other_location.pk), {"type": "live.event", "payload": {"topic": "other"}})
        assert await socket.receive_nothing(timeout=0.3)
        await layer.group_send(location_group(location.pk), {"type": "live.event", "payload": {"topic": "mine"}})
        assert (await socket.receive_json_from(timeout=2))["topic"] == "mine"
        await socket.disconnect()

    async_to_sync(probe)()


def test_the_sign_in_needs_the_csrf_token_of_this_browser(connected):
    attacker = Client(enforce_csrf_checks=True)
    attacker.get("/ghl/app/")
    stolen = attacker.cookies["csrftoken"].value
    victim = Client(enforce_csrf_checks=True)
    assert sign_in(victim, encrypted(), HTTP_X_CSRFTOKEN=stolen).status_code == 403
    assert signed_in_user(victim).is_anonymous


# --- framing and cookies ---------------------------------------------------------------------

def test_the_django_admin_may_not_be_framed_even_by_ghl(admin_client):
    for path in ("/admin/login/", "/admin/"):
        response = Client().get(path)
        assert response["Content-Security-Policy"] == "frame-ancestors 'none'", path
        assert response["X-Frame-Options"] == "DENY", path
    # the product's pages stay frameable by GHL
    assert "https://app.gohighlevel.com" in admin_client.get("/inbox/")["Content-Security-Policy"]


def test_over_plain_http_cookies_stay_same_site_and_unpartitioned(connected, settings):
    assert not settings.EMBED_COOKIES_PARTITIONED  # the test settings run over http
    client = Client()
    client.get("/ghl/app/")
    cookie = sign_in(client, encrypted()).cookies["sessionid"].output()
    assert "Partitioned" not in cookie and "SameSite=None" not in cookie and "HttpOnly" in cookie


# --- tokens ----------------------------------------------------------------------------------

def test_agency_and_location_tokens_are_encrypted_and_never_logged(ghl, settings, caplog):  # noqa: F811
    settings.GHL_APP_ID = ghl.app_id
    ghl.add_location("ghl-a", name="Client A")
    with caplog.at_level(logging.DEBUG):
        Client().get("/ghl/oauth/callback", {"code": ghl.issue_company_code("agency-9", locations=["ghl-a"])})
    company = GhlCompany.objects.get()
    location_token = GhlConnection.objects.get().secrets["access_token"]
    for secret in (company.secrets["access_token"], company.secrets["refresh_token"], location_token):
        assert secret not in caplog.text
        with db.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM ghl_ghlcompany WHERE secrets::text LIKE %s", [f"%{secret}%"])
            assert cursor.fetchone()[0] == 0
            cursor.execute("SELECT count(*) FROM ghl_ghlconnection WHERE secrets::text LIKE %s", [f"%{secret}%"])
            assert cursor.fetchone()[0] == 0
    # the Company token went to the agency endpoints only
    assert all(c.path.startswith("/oauth/") for c in ghl.calls
               if (c.headers.get("authorization") or "").endswith(company.secrets["access_token"]))


# --- the waker -------------------------------------------------------------------------------

def test_the_waker_fires_each_locations_own_work_once_and_a_burst_piles_nothing_up(location, other_location):
    later = timezone.now() + timezone.timedelta(hours=1)
    for _ in range(50):  # a tenant provoking 429 after 429 moves one schedule, never adds
        run_now_or_at(_record, location.pk, name=f"probe-{location.pk}", at=later)
    run_now_or_at(_record, other_location.pk, name=f"probe-{other_location.pk}", at=later)
    assert Schedule.objects.filter(name__startswith="probe-").count() == 2
    Schedule.objects.filter(name=f"probe-{location.pk}").update(next_run=timezone.now() - timezone.timedelta(seconds=1))
    row = Schedule.objects.filter(name=f"probe-{location.pk}").values("pk", "name", "func", "args", "next_run").get()
    assert waker.fire(row) is True and waker.fire(row) is False
    waker.wake_due(horizon=0.1)  # the other location's work is not due: not fired
    assert FIRED == [location.pk]
    FIRED.clear()


FIRED: list[int] = []


def _record(location_id: int) -> None:
    FIRED.append(location_id)


def test_no_person_can_make_a_login_with_a_ghl_dedicated_name(location):
    """Logins of GHL users are `ghl:<location>:<user id>` (ghl/embed.py): the services that make
    logins apply Django's username rule (no colon), as the forms do, so nobody can plant one."""
    from accounts.invitations import invitation_create, invitation_sign_up
    from accounts.services import member_add
    from whatsnap.errors import ApplicationError

    with pytest.raises(ApplicationError, match="only letters, digits"):
        member_add(location=location, username=f"ghl:{location.pk}:someone", email="", password="a-Long-pass-9", role="agent")
    invitation, _ = invitation_create(location=location, invited_by=None, email="x@example.com", role="agent")
    with pytest.raises(ApplicationError, match="only letters, digits"):
        invitation_sign_up(invitation=invitation, username=f"ghl:{location.pk}:someone", password="a-Long-pass-9")
    from django.contrib.auth import get_user_model
    assert not get_user_model().objects.filter(username__startswith="ghl:").exists()


def test_deploy_check_wants_the_app_id_with_a_client_id(settings):
    from ghl.checks import ghl_app_id_check

    settings.GHL_CLIENT_ID, settings.GHL_APP_ID = "client", ""
    assert [e.id for e in ghl_app_id_check(None)] == ["whatsnap.E021"]
    settings.GHL_APP_ID = "app-1"
    assert ghl_app_id_check(None) == []


def test_another_providers_signed_delivery_forwarded_to_us_is_not_sent(installed, ghl, location):  # noqa: F811
    """GHL signs every app's webhooks with one key, and a ProviderOutboundMessage names no app or
    provider: another app's developer forwards their own signed delivery for a sub-account we
    share. GHL's message (GET /conversations/messages/{id}) names its provider: not ours, not sent."""
    from accounts.services import account_connect, account_create
    from conversations.models import Message
    from tests.test_ghl import drain

    sales = account_create(location=location, kind="android_sms", backend="sandbox", name="Sales", phone_number="+14155550111")
    account_connect(account=sales)
    GhlConnection.objects.filter(location=location).update(default_sms_account=sales)
    contact = ghl.add_contact("ghl-loc-1", phone="+14155550333", name="Eve")
    theirs = ghl.add_provider_message("ghl-loc-1", contact, "their app's text", provider_id="another-apps-provider")
    ours = ghl.add_provider_message("ghl-loc-1", contact, "our provider's text", provider_id="prov-123")
    for mid, text in ((theirs, "their app's text"), (ours, "our provider's text")):
        response = post_signed(ghl, "/ghl/webhooks/provider/", ghl.provider_outbound(location_id="ghl-loc-1", contact_id=contact, text=text, message_id=mid))
        assert response.status_code == 200
    drain(location)
    assert list(Message.objects.filter(direction="outbound").values_list("text", flat=True)) == ["our provider's text"]
    refused = OutboxItem.objects.get(operation="provider_outbound", payload__messageId=theirs)
    assert refused.status == "done" and "another conversation provider" in refused.result
