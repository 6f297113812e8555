"""/api/v1/accounts/ and /api/v1/users/."""
from django.db import connection

from accounts.models import Account, Membership
from accounts.services import account_create
from contacts.models import Tag
from tests.test_api_support import *  # noqa: F401,F403  (fixtures)
from tests.test_api_support import assert_error

TWILIO = {"kind": "twilio", "name": "Support", "phone_number": "+14155550199"}


def test_list_and_retrieve_show_status_tag_and_webhook_urls(api_client, sandbox_account):
    body = api_client.get("/api/v1/accounts/").json()
    (row,) = body["results"]
    assert row["id"] == sandbox_account.pk and row["status"] == "connected" and row["tag"] == "whatsnap-account-sales"
    assert row["webhook_urls"]["inbound"] == f"http://testserver/webhooks/sandbox/{sandbox_account.pk}/"
    detail = api_client.get(f"/api/v1/accounts/{sandbox_account.pk}/").json()
    assert detail == row


def test_create_twilio_account_connects_and_answers_201(api_client, twilio_standin):
    payload = {**TWILIO, "credentials": {"account_sid": twilio_standin.account_sid, "auth_token": twilio_standin.auth_token}}
    response = api_client.post("/api/v1/accounts/", payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    account = Account.objects.get(pk=body["id"])
    assert body["backend"] == "twilio" and body["kind"] == "twilio" and body["status"] == "connected"
    assert body["tag"] == "whatsnap-account-support" == account.tag.name
    assert body["webhook_urls"] == {"inbound": f"http://testserver/webhooks/twilio/{account.pk}/",
                                    "status": f"http://testserver/webhooks/twilio/{account.pk}/status/"}
    assert "credentials" not in body and twilio_standin.auth_token not in response.content.decode()
    assert account.credentials["auth_token"] == twilio_standin.auth_token
    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM accounts_account WHERE id = %s", [account.pk])
        assert twilio_standin.auth_token not in cursor.fetchone()[0]
    # the credentials were checked, the number found and pointed at our webhooks
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in twilio_standin.requests] == [
        ("GET", f"{twilio_standin.account_sid}.json"), ("GET", "IncomingPhoneNumbers.json"),
        ("POST", f"{twilio_standin.number('+14155550199')['sid']}.json")]
    assert twilio_standin.number("+14155550199")["sms_url"] == body["webhook_urls"]["inbound"]


def test_create_twilio_with_refused_credentials_is_created_in_error(api_client, twilio_standin):
    payload = {**TWILIO, "credentials": {"account_sid": twilio_standin.account_sid, "auth_token": "wrong"}}
    response = api_client.post("/api/v1/accounts/", payload, format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "error" and "Twilio refused" in response.json()["last_error"]


def test_create_sandbox_account(api_client):
    response = api_client.post("/api/v1/accounts/", {"kind": "android_sms", "backend": "sandbox", "name": "Field team",
                                                     "phone_number": "+1 415 555 0142"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["slug"], body["status"], body["phone_number"]) == ("field-team", "connected", "+14155550142")
    assert body["webhook_urls"]["inbound"].endswith(f"/webhooks/sandbox/{body['id']}/")


def test_create_validation_errors(api_client, sandbox_account):
    assert_error(api_client.post("/api/v1/accounts/", {**TWILIO}, format="json"), 400, "invalid", "credentials")
    assert_error(api_client.post("/api/v1/accounts/", {**TWILIO, "credentials": {"account_sid": "nope", "auth_token": "x"}},
                                 format="json"), 400, "invalid", "credentials")
    assert_error(api_client.post("/api/v1/accounts/", {"kind": "whatsapp", "backend": "twilio", "name": "x"}, format="json"),
                 400, "invalid", "backend")
    assert_error(api_client.post("/api/v1/accounts/", {"kind": "fax", "name": "x"}, format="json"), 400, "invalid", "kind")
    assert_error(api_client.post("/api/v1/accounts/", {"kind": "android_sms", "backend": "sandbox", "name": "x",
                                                       "phone_number": "12"}, format="json"), 400, "invalid", "phone_number")
    body = assert_error(api_client.post("/api/v1/accounts/", {"kind": "whatsapp", "backend": "sandbox", "name": "Sales"},
                                        format="json"), 400, "slug_taken", "slug")
    assert body["suggestion"] == "sales-2"


def test_disconnect_and_delete(api_client, sandbox_account):
    response = api_client.post(f"/api/v1/accounts/{sandbox_account.pk}/disconnect/")
    assert response.status_code == 200 and response.json()["status"] == "disconnected"
    assert api_client.delete(f"/api/v1/accounts/{sandbox_account.pk}/").status_code == 204
    sandbox_account.refresh_from_db()
    assert sandbox_account.archived_at is not None
    assert api_client.get("/api/v1/accounts/").json()["results"] == []
    assert api_client.get(f"/api/v1/accounts/{sandbox_account.pk}/").status_code == 404
    assert Tag.objects.get(name="whatsnap-account-sales").account is None  # the tag stays, as a plain tag


def test_agent_token_reads_but_cannot_manage_accounts(agent_api, sandbox_account):
    assert agent_api.get("/api/v1/accounts/").status_code == 200
    body = assert_error(agent_api.post("/api/v1/accounts/", {"kind": "whatsapp", "backend": "sandbox", "name": "x"},
                                       format="json"), 403, "permission_denied")
    assert "admin token" in body["detail"]
    assert_error(agent_api.post(f"/api/v1/accounts/{sandbox_account.pk}/disconnect/"), 403)
    assert_error(agent_api.delete(f"/api/v1/accounts/{sandbox_account.pk}/"), 403)
    assert not Account.objects.filter(name="x").exists()


def test_admin_member_token_manages_accounts(admin_member_api):
    response = admin_member_api.post("/api/v1/accounts/", {"kind": "whatsapp", "backend": "sandbox", "name": "wa"}, format="json")
    assert response.status_code == 201 and response.json()["status"] == "qr_pending"


def test_other_locations_account_is_404(other_api, sandbox_account):
    assert other_api.get("/api/v1/accounts/").json()["results"] == []
    for call in (other_api.get, other_api.delete):
        assert_error(call(f"/api/v1/accounts/{sandbox_account.pk}/"), 404, "not_found")
    assert_error(other_api.post(f"/api/v1/accounts/{sandbox_account.pk}/disconnect/"), 404, "not_found")
    sandbox_account.refresh_from_db()
    assert sandbox_account.status == "connected" and sandbox_account.archived_at is None


def test_list_filters_archived_and_orders(api_client, location):
    first = account_create(location=location, kind="whatsapp", backend="sandbox", name="a")
    second = account_create(location=location, kind="whatsapp", backend="sandbox", name="b")
    assert [r["id"] for r in api_client.get("/api/v1/accounts/").json()["results"]] == [second.pk, first.pk]
    assert [r["id"] for r in api_client.get("/api/v1/accounts/?ordering=id").json()["results"]] == [first.pk, second.pk]


# --- users -------------------------------------------------------------------------------------
def test_users_lists_members_with_role_availability_capacity(api_client, admin_user, agent_user, outsider):
    body = api_client.get("/api/v1/users/").json()
    assert [(u["id"], u["username"], u["role"], u["availability"], u["capacity"]) for u in body["results"]] == [
        (admin_user.pk, "owner", "admin", "online", 20),
        (agent_user.pk, "teammate", "agent", "online", 20),
    ]
    assert [u["username"] for u in api_client.get("/api/v1/users/?role=agent").json()["results"]] == ["teammate"]
    assert_error(api_client.get("/api/v1/users/?availability=sleeping"), 400, "invalid", "availability")
    assert_error(api_client.get(f"/api/v1/users/{outsider.pk}/"), 404, "not_found")


def test_agent_sets_own_availability_only(agent_api, agent_user, admin_user):
    response = agent_api.patch(f"/api/v1/users/{agent_user.pk}/", {"availability": "away"}, format="json")
    assert response.status_code == 200 and response.json()["availability"] == "away"
    assert Membership.objects.get(user=agent_user).availability == "away"
    assert_error(agent_api.patch(f"/api/v1/users/{admin_user.pk}/", {"availability": "away"}, format="json"), 403)
    assert_error(agent_api.patch(f"/api/v1/users/{agent_user.pk}/", {"capacity": 99}, format="json"), 403)
    assert_error(agent_api.patch(f"/api/v1/users/{agent_user.pk}/", {"availability": "gone"}, format="json"), 400,
                 "invalid", "availability")


def test_admin_sets_anyones_capacity_and_availability(api_client, agent_user):
    response = api_client.patch(f"/api/v1/users/{agent_user.pk}/", {"capacity": 3, "availability": "offline"}, format="json")
    assert response.status_code == 200
    member = Membership.objects.get(user=agent_user)
    assert (member.capacity, member.availability) == (3, "offline")
