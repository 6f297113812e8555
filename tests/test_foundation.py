import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import ApiToken, Location
from accounts.services import account_create, api_token_create
from whatsnap.crypto import decrypt, encrypt


def test_pages_require_login(db):
    response = Client().get("/accounts/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_login_page_and_demo_admin_can_log_in(db, capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if "admin" in l and "password:" in l)
    password = line.split("password:")[1].strip()
    client = Client()
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": "admin", "password": password})
    assert response.status_code == 302
    assert client.get("/accounts/").status_code == 200


def test_seed_demo_makes_no_superuser_or_staff(db, capsys):
    # a seeded superuser read every tenant's messages and API keys in /admin/
    from django.contrib.auth import get_user_model

    call_command("seed_demo")
    assert "createsuperuser" in capsys.readouterr().out
    users = get_user_model().objects.all()
    assert users.count() == 2 and not users.filter(is_superuser=True).exists() and not users.filter(is_staff=True).exists()


def test_seed_demo_only_on_empty_database(db, capsys, admin_user):
    call_command("seed_demo")
    assert "password" not in capsys.readouterr().out


def test_user_without_membership_is_refused(db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("loner", password="x")
    client = Client()
    client.force_login(user)
    assert client.get("/accounts/").status_code == 403


def test_other_locations_account_is_404(admin_client, outsider_client, location):
    account = account_create(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    assert admin_client.get(f"/accounts/{account.pk}/").status_code == 200
    assert outsider_client.get(f"/accounts/{account.pk}/").status_code == 404
    assert outsider_client.get(f"/sandbox/{account.pk}/phone/").status_code == 404
    assert outsider_client.post(f"/accounts/{account.pk}/disconnect/").status_code == 404
    assert b"Sales" not in outsider_client.get("/accounts/").content


def test_agent_cannot_add_accounts(agent_client):
    assert agent_client.get("/accounts/add/").status_code == 403


def test_api_token_auth(api_client, location, other_location):
    account_create(location=location, kind="whatsapp", backend="sandbox", name="Mine")
    theirs = account_create(location=other_location, kind="whatsapp", backend="sandbox", name="Theirs")
    response = api_client.get("/api/v1/accounts/")
    assert response.status_code == 200
    assert [a["name"] for a in response.json()["results"]] == ["Mine"]
    assert api_client.get(f"/api/v1/accounts/{theirs.pk}/").status_code == 404


def test_api_refuses_missing_and_bad_tokens(db):
    from rest_framework.test import APIClient

    client = APIClient()
    response = client.get("/api/v1/accounts/")
    assert response.status_code in (401, 403)
    assert response.json()["code"] in ("not_authenticated", "authentication_failed")
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    assert client.get("/api/v1/accounts/").status_code == 401


def test_create_api_token_command(db, capsys):
    call_command("create_api_token", "Initech")
    key = capsys.readouterr().out.strip().splitlines()[-1]
    token = ApiToken.objects.for_key(key)
    assert token.location == Location.objects.get(name="Initech")
    assert key.startswith(f"wsn_{token.prefix}") and len(token.prefix) == 8


def test_api_keys_are_stored_hashed_with_a_visible_prefix(db):
    from django.db import connection

    location = Location.objects.create(name="Keys", slug="keys")
    token, key = api_token_create(location=location, name="crm")
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken WHERE id = %s", [token.pk])
        row = cursor.fetchone()
    assert not any(key in str(value) for value in row)  # no column holds the key
    assert token.masked_key == key[:12] + "…"
    assert ApiToken.objects.for_key(key) == token
    assert ApiToken.objects.for_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None  # same prefix, other key
    assert ApiToken.objects.for_key(token.key_hash) is None  # the stored hash is not a key
    with pytest.raises(ValueError):
        ApiToken.objects.create(location=location, name="no key")  # only the service makes tokens


def test_api_keys_are_prefixed_and_never_look_like_an_option(db):
    # a key starting with "-" broke `--token <key>` on command lines; the prefix rules that out
    # and lets secret scanners recognise a leaked key
    location = Location.objects.create(name="Keys", slug="keys")
    keys = {api_token_create(location=location, name="k")[1] for _ in range(50)}
    assert len(keys) == 50
    assert all(k.startswith("wsn_") and len(k) == 47 for k in keys)


def test_secrets_are_encrypted_at_rest(twilio_account):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM accounts_account WHERE id = %s", [twilio_account.pk])
        raw = cursor.fetchone()[0]
    assert "secret-auth-token" not in raw
    assert "secret-auth-token" in decrypt(raw)
    assert decrypt(encrypt("x")) == "x"


def test_webhook_signing_secrets_are_encrypted_at_rest(location):
    # the secret that verifies a backend's webhooks, and the one that signs outgoing webhooks
    from django.db import connection

    from hooks.services import hook_subscription_create

    account = account_create(location=location, kind="android_sms", backend="sandbox", name="Sales", phone_number="+14155550111")
    subscription = hook_subscription_create(location=location, url="http://127.0.0.1:9/hook", events=["contact.created"])
    account.refresh_from_db()
    subscription.refresh_from_db()
    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_secret FROM accounts_account WHERE id = %s", [account.pk])
        account_raw = cursor.fetchone()[0]
        cursor.execute("SELECT secret_encrypted FROM hooks_webhooksubscription WHERE id = %s", [subscription.pk])
        subscription_raw = cursor.fetchone()[0]
    assert len(account.webhook_secret) >= 24 and account.webhook_secret not in account_raw
    assert decrypt(account_raw) == account.webhook_secret
    assert subscription.secret.startswith("whsec_") and subscription.secret not in subscription_raw
    assert decrypt(subscription_raw) == subscription.secret


def test_healthz_ok(db):
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] and body["broker"]["ok"] and body["channel_layer"]["ok"]


def test_healthz_503_when_broker_down(db, monkeypatch):
    from django_q.brokers.orm import ORM

    def broken_ping(self):
        raise ConnectionError("broker down")

    monkeypatch.setattr(ORM, "ping", broken_ping)
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["broker"] == {"ok": False, "detail": "ConnectionError"}


@pytest.mark.django_db
def test_openapi_schema_validates():
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")
