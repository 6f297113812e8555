"""Installs started in GHL (issue 21.1): from the marketplace for one sub-account (a `code` and no
`state` of ours, nobody logged in), and by an agency for many sub-accounts (a Company token that
obtains a Location token per sub-account), kept in step by the INSTALL / UNINSTALL webhooks.

Wire format from GoHighLevel/highlevel-api-docs: apps/oauth.json (POST /oauth/token's answer
GetAccessCodeSuccessfulResponseDto: userType, locationId, companyId, approvedLocations,
isBulkInstallation; POST /oauth/locationToken GetLocationAccessCodeBodyDto / its answer without a
refresh token; GET /oauth/installedLocations), apps/locations.json (GET /locations/{id}:
GetLocationByIdSchema name, timezone, country), docs/webhook events/AppInstall.md and
AppUninstall.md (payloads)."""
from datetime import datetime, timezone as dt_tz

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Location
from accounts.providers.base import InboundMessage
from accounts.services import account_connect, account_create
from conversations.services import webhook_events_record
from ghl import installs
from ghl.client import GhlClient
from ghl.models import GhlCompany, GhlConnection, GhlInstall
from tests.test_ghl import drain, ghl, post_signed  # noqa: F401  (the stand-in fixture)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def app_id(settings, ghl):  # noqa: F811
    settings.GHL_APP_ID = ghl.app_id


def callback(code: str, client=None):
    return (client or Client()).get("/ghl/oauth/callback", {"code": code})


def first_inbound_reaches_ghl(location, standin, ghl_location_id: str, phone: str) -> None:
    account = account_create(location=location, kind="android_sms", backend="sandbox", name="Front desk", phone_number="+14155550100")
    account_connect(account=account)
    text = f"first hello to {ghl_location_id}"
    webhook_events_record(account=account, events=[InboundMessage(provider_id="first-1", from_phone=phone, name="Ada", text=text,
                                                                  at=datetime.now(dt_tz.utc))])
    drain(location)
    posted = [m for m in standin.messages.values() if m.get("message") == text]
    assert [m["locationId"] for m in posted] == [ghl_location_id]


def test_marketplace_install_for_a_new_sub_account_makes_its_location_and_syncs_its_first_message(ghl):  # noqa: F811
    ghl.add_location("ghl-new-1", name="Bright Smiles Dental", timezone_name="America/Denver", country="US")
    response = callback(ghl.issue_code("ghl-new-1"))  # nobody logged in, no state
    assert response.status_code == 200
    page = response.content.decode()
    assert "Bright Smiles Dental" in page and "choose <strong>WhatSnap</strong> in its left menu" in page
    location = Location.objects.get(ghl_location_id="ghl-new-1")
    assert (location.name, location.timezone, location.country) == ("Bright Smiles Dental", "America/Denver", "US")
    connection = GhlConnection.objects.get(location=location)
    assert connection.active and connection.secrets["access_token"] and connection.secrets["refresh_token"]
    (token_call,) = [c for c in ghl.calls if c.path == "/oauth/token"]
    assert "user_type" not in token_call.form  # GHL decides: a sub-account's code or an agency's
    assert "state" not in token_call.form
    first_inbound_reaches_ghl(location, ghl, "ghl-new-1", "+14155550123")


def test_marketplace_install_for_a_sub_account_already_in_whatsnap_connects_that_location(ghl, location):  # noqa: F811
    location.ghl_location_id = "ghl-loc-1"
    location.save()
    response = callback(ghl.issue_code("ghl-loc-1"))
    assert response.status_code == 200 and location.name in response.content.decode()
    assert Location.objects.count() == 1 and GhlConnection.objects.get().location == location
    # uninstalled in GHL, then installed again from the marketplace: the same location comes back
    post_signed(ghl, "/ghl/webhooks/app/", {"type": "UNINSTALL", "appId": ghl.app_id, "locationId": "ghl-loc-1"})
    location.refresh_from_db()
    assert location.ghl_location_id == ""
    callback(ghl.issue_code("ghl-loc-1"))
    location.refresh_from_db()
    assert location.ghl_location_id == "ghl-loc-1" and Location.objects.count() == 1


def test_agency_install_connects_each_sub_account_with_a_location_token(ghl):  # noqa: F811
    ghl.add_location("ghl-a", name="Agency Client A", timezone_name="Europe/London", country="GB")
    ghl.add_location("ghl-b", name="Agency Client B", timezone_name="America/New_York")
    response = callback(ghl.issue_company_code("agency-9", locations=["ghl-a", "ghl-b"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Agency Client A" in page and "Agency Client B" in page
    company = GhlCompany.objects.get(company_id="agency-9")
    assert company.secrets["refresh_token"] and company.status == "connected"
    a, b = Location.objects.get(ghl_location_id="ghl-a"), Location.objects.get(ghl_location_id="ghl-b")
    assert (a.name, a.timezone, a.country) == ("Agency Client A", "Europe/London", "GB")
    for location in (a, b):
        connection = GhlConnection.objects.get(location=location)
        assert connection.agency == company and connection.company_id == "agency-9" and connection.secrets["refresh_token"] == ""
    assert len(ghl.api_calls("POST", "/oauth/locationToken")) == 2
    assert ghl.api_calls("GET", "/oauth/installedLocations")[0].query["appId"] == ghl.app_id
    first_inbound_reaches_ghl(a, ghl, "ghl-a", "+14155550124")
    first_inbound_reaches_ghl(b, ghl, "ghl-b", "+14155550125")


def test_a_location_token_of_an_agency_is_renewed_through_the_agency(ghl):  # noqa: F811
    ghl.add_location("ghl-a", name="Agency Client A")
    callback(ghl.issue_company_code("agency-9", locations=["ghl-a"]))
    connection = GhlConnection.objects.get()
    GhlConnection.objects.filter(pk=connection.pk).update(token_expires_at=timezone.now() - timezone.timedelta(minutes=1))
    GhlCompany.objects.update(token_expires_at=timezone.now() - timezone.timedelta(minutes=1))  # and the agency's too
    before = len(ghl.api_calls("POST", "/oauth/locationToken"))
    connection.refresh_from_db()
    response = GhlClient(connection).request("GET", "/locations/ghl-a")
    assert response.data["location"]["name"] == "Agency Client A"
    assert len(ghl.api_calls("POST", "/oauth/locationToken")) == before + 1
    grants = [(c.form["grant_type"], c.form.get("user_type")) for c in ghl.calls if c.path == "/oauth/token"]
    assert grants == [("authorization_code", None), ("refresh_token", "Company")]


def test_install_webhook_for_a_later_sub_account_of_a_known_agency_connects_it(ghl):  # noqa: F811
    ghl.add_location("ghl-a", name="First")
    callback(ghl.issue_company_code("agency-9", locations=["ghl-a"]))
    ghl.add_location("ghl-c", name="Opened later")
    ghl.installed["agency-9"].append("ghl-c")
    payload = {"type": "INSTALL", "appId": ghl.app_id, "locationId": "ghl-c", "companyId": "agency-9", "userId": "u1",
               "companyName": "Agency 9", "webhookId": "wh-install-c", "timestamp": timezone.now().isoformat()}
    response = post_signed(ghl, "/ghl/webhooks/app/", payload)
    assert response.status_code == 200 and "queued" in response.json()["outcome"]
    row = GhlInstall.objects.get(ghl_location_id="ghl-c")
    installs.installs_run_for(row.company_id)  # the task the webhook queued on commit
    assert Location.objects.get(ghl_location_id="ghl-c").name == "Opened later"
    # another app's event, or an install of an agency we hold no token for, changes nothing
    other = post_signed(ghl, "/ghl/webhooks/app/", {**payload, "appId": "someone-else", "locationId": "ghl-x", "webhookId": "wh-2"})
    assert "another app" in other.json()["outcome"]
    unknown = post_signed(ghl, "/ghl/webhooks/app/", {**payload, "companyId": "agency-0", "locationId": "ghl-y", "webhookId": "wh-3"})
    assert "OAuth redirect" in unknown.json()["outcome"] and not GhlInstall.objects.filter(ghl_location_id="ghl-y").exists()


def test_agency_uninstall_disconnects_every_sub_account_it_connected(ghl, location):  # noqa: F811
    callback(ghl.issue_company_code("agency-9", locations=["ghl-a", "ghl-b"]))
    location.ghl_location_id = "ghl-own"  # installed on its own, not through the agency: untouched
    location.save()
    GhlConnection.objects.create(location=location, installed_ghl_location_id="ghl-own", secrets={"access_token": "x"})
    response = post_signed(ghl, "/ghl/webhooks/app/", {"type": "UNINSTALL", "appId": ghl.app_id, "companyId": "agency-9"})
    assert response.status_code == 200 and "2 sub-account" in response.json()["outcome"]
    assert GhlCompany.objects.get().status == "uninstalled" and GhlCompany.objects.get().secrets == {}
    assert set(GhlConnection.objects.filter(agency__isnull=False).values_list("status", flat=True)) == {"uninstalled"}
    location.refresh_from_db()
    assert location.ghl_location_id == "ghl-own"


def test_ghl_down_during_an_agency_install_keeps_the_sub_account_waiting_then_connects_it(ghl):  # noqa: F811
    ghl.add_location("ghl-a", name="Patient")
    code = ghl.issue_company_code("agency-9", locations=["ghl-a"])
    ghl.late_answers.clear()
    original = ghl._agency

    def down(call):
        return (503, {"message": "stand-in outage"}) if call.path == "/oauth/locationToken" else original(call)
    ghl._agency = down
    response = callback(code)
    assert response.status_code == 200 and "Waiting for GHL" in response.content.decode()
    row = GhlInstall.objects.get()
    assert row.status == "pending" and row.attempts == 1 and row.next_attempt_at > timezone.now()
    ghl._agency = original
    GhlInstall.objects.update(next_attempt_at=timezone.now())
    assert installs.installs_sweep() == 1
    assert Location.objects.get(ghl_location_id="ghl-a").name == "Patient"


def test_refused_code_and_switched_off_provisioning_say_why_and_make_nothing(ghl, settings):  # noqa: F811
    response = callback("used-or-wrong")
    assert response.status_code == 400 and "refused" in response.content.decode()
    settings.GHL_PROVISION_LOCATIONS = False
    response = callback(ghl.issue_code("ghl-new-2"))
    assert response.status_code == 400 and "does not create locations" in response.content.decode()
    assert not Location.objects.exists() and not GhlConnection.objects.exists()


def test_with_our_state_the_callback_still_needs_the_admin_who_started_it(ghl):  # noqa: F811
    response = Client().get("/ghl/oauth/callback", {"code": ghl.issue_code("ghl-loc-1"), "state": "anything"})
    assert response.status_code == 302 and "/login" in response["Location"]
    assert not GhlConnection.objects.exists() and not [c for c in ghl.calls if c.path == "/oauth/token"]
