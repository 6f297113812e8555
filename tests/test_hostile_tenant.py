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
        assert str(account.pk) not in account.gateway_resource.removeprefix("whatsnap-")
        assert len(account.gateway_resource.removeprefix("whatsnap-")) == 16
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
