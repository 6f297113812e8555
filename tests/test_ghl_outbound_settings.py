"""Issue 18.1: the GoHighLevel page's "Sending from GHL" settings — the default account per
channel and the account each GHL user sends through. Admins only, checked against the location
and the channel; answered in place over HTMX."""
import pytest
from django.utils import timezone

from accounts.services import account_connect, account_create, account_set_status
from ghl.models import GhlConnection, GhlUser

pytestmark = pytest.mark.django_db
URL = "/ghl/sending/"
HTMX = {"HTTP_HX_REQUEST": "true"}


def connect(location, kind, name, phone):
    account = account_create(location=location, kind=kind, backend="sandbox", name=name, phone_number=phone)
    account_connect(account=account)
    account_set_status(account=account, status="connected", reason="test")
    return account


@pytest.fixture
def connection(location):
    location.ghl_location_id = "ghl-loc-1"
    location.save(update_fields=["ghl_location_id"])
    return GhlConnection.objects.create(location=location, secrets={"access_token": "t"})


@pytest.fixture
def sms(location):
    return connect(location, "android_sms", "Texts", "+14155550111")


@pytest.fixture
def wa(location):
    return connect(location, "whatsapp", "Marketing", "+14155550150")


def test_admin_sets_the_defaults_in_place(admin_client, connection, sms, wa):
    page = admin_client.get("/ghl/").content.decode()
    assert 'id="ghl-sending"' in page and "Default SMS account" in page and "Texts · SMS (Android phone)" in page
    response = admin_client.post(URL, {"what": "defaults", "default_sms_account": sms.pk, "default_whatsapp_account": wa.pk}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and body.startswith('<div class="card" id="ghl-sending">')
    assert "Defaults saved: SMS Texts, WhatsApp Marketing." in body
    connection.refresh_from_db()
    assert (connection.default_sms_account, connection.default_whatsapp_account) == (sms, wa)
    # cleared again, without HTMX: a redirect with the message
    response = admin_client.post(URL, {"what": "defaults", "default_sms_account": "", "default_whatsapp_account": ""})
    assert response.status_code == 302 and response["Location"] == "/ghl/"
    connection.refresh_from_db()
    assert connection.default_sms_account is None and connection.default_whatsapp_account is None


def test_a_default_must_fit_its_channel(admin_client, connection, sms, wa):
    response = admin_client.post(URL, {"what": "defaults", "default_sms_account": wa.pk, "default_whatsapp_account": ""}, **HTMX)
    body = response.content.decode()
    assert "Marketing cannot send SMS" in body and 'role="alert"' in body
    response = admin_client.post(URL, {"what": "defaults", "default_sms_account": "", "default_whatsapp_account": sms.pk}, **HTMX)
    assert "Texts is not a WhatsApp account." in response.content.decode()
    connection.refresh_from_db()
    assert connection.default_sms_account is None and connection.default_whatsapp_account is None


def test_hostile_admin_cannot_pick_another_locations_account(admin_client, connection, sms, other_location):
    theirs = connect(other_location, "android_sms", "Theirs", "+14155550190")
    response = admin_client.post(URL, {"what": "defaults", "default_sms_account": theirs.pk, "default_whatsapp_account": ""}, **HTMX)
    body = response.content.decode()
    assert "not one of this location&#x27;s accounts" in body and "Theirs" not in body
    connection.refresh_from_db()
    assert connection.default_sms_account is None
    their_user = GhlUser.objects.create(location=other_location, ghl_user_id="u-x", name="Not yours")
    mine = GhlUser.objects.create(location=connection.location, ghl_user_id="u-1", name="Maria")
    response = admin_client.post(URL, {"what": "user", "ghl_user": their_user.pk, "account": sms.pk}, **HTMX)
    assert "That GHL user is not one of this location&#x27;s." in response.content.decode()
    response = admin_client.post(URL, {"what": "user", "ghl_user": mine.pk, "account": theirs.pk}, **HTMX)
    assert "not one of this location&#x27;s accounts" in response.content.decode()
    their_user.refresh_from_db()
    mine.refresh_from_db()
    assert their_user.sends_through is None and mine.sends_through is None


def test_admin_chooses_the_account_a_ghl_user_sends_through(admin_client, connection, sms, wa):
    maria = GhlUser.objects.create(location=connection.location, ghl_user_id="u-1", name="Maria")
    response = admin_client.post(URL, {"what": "user", "ghl_user": maria.pk, "account": wa.pk}, **HTMX)
    assert "Maria&#x27;s sends go through Marketing." in response.content.decode()
    maria.refresh_from_db()
    assert maria.sends_through == wa
    admin_client.post(URL, {"what": "user", "ghl_user": maria.pk, "account": ""}, **HTMX)
    maria.refresh_from_db()
    assert maria.sends_through is None


def test_agents_and_outsiders_cannot_change_them(agent_client, outsider_client, connection, sms, other_location):
    assert agent_client.post(URL, {"what": "defaults", "default_sms_account": sms.pk}).status_code == 403
    # an admin of another location acts on their own location only: our account is not theirs
    theirs = GhlConnection.objects.create(location=other_location)
    response = outsider_client.post(URL, {"what": "defaults", "default_sms_account": sms.pk}, **HTMX)
    assert "not one of this location&#x27;s accounts" in response.content.decode()
    connection.refresh_from_db()
    theirs.refresh_from_db()
    assert connection.default_sms_account is None and theirs.default_sms_account is None
    page = agent_client.get("/ghl/").content.decode()
    assert "Only admins change these." in page and 'name="default_sms_account"' not in page


def test_an_archived_account_is_no_choice(admin_client, connection, sms):
    type(sms).objects.filter(pk=sms.pk).update(archived_at=timezone.now())
    response = admin_client.post(URL, {"what": "defaults", "default_sms_account": sms.pk, "default_whatsapp_account": ""}, **HTMX)
    assert "not one of this location&#x27;s accounts" in response.content.decode()
