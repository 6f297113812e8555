"""API conventions: one error shape, cursor pagination, ordering, per-token rate limiting, the
schema and docs, and tenancy across every resource."""
import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.services import account_create
from contacts.services import tag_create
from conversations.models import Conversation, Message
from hooks.services import hook_subscription_create
from routing.models import RoutingRule, Team
from tests.test_api_support import *  # noqa: F401,F403  (fixtures)
from tests.test_api_support import assert_error, receive
from whatsnap.api_policies import TokenRateThrottle


def test_missing_malformed_and_unknown_tokens(db):
    client = APIClient()
    assert_error(client.get("/api/v1/contacts/"), 401, "not_authenticated")
    client.credentials(HTTP_AUTHORIZATION="Token")
    assert_error(client.get("/api/v1/contacts/"), 401, "authentication_failed")
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    response = client.get("/api/v1/contacts/")
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == "Token"


def test_not_found_shapes(api_client):
    for path in ("/api/v1/contacts/12345/", "/api/v1/contacts/99999999999999999999999/", "/api/v1/conversations/abc/"):
        body = assert_error(api_client.get(path), 404, "not_found")
        assert body == {"detail": "Not found.", "code": "not_found"}


def test_bad_json_wrong_media_type_and_wrong_method(api_client):
    body = assert_error(api_client.post("/api/v1/tags/", "{nope", content_type="application/json"), 400, "parse_error")
    assert "JSON" in body["detail"]
    assert_error(api_client.post("/api/v1/tags/", {"name": "x"}), 415, "unsupported_media_type")  # multipart
    assert_error(api_client.put("/api/v1/tags/1/", {"name": "x"}, format="json"), 405, "method_not_allowed")


def test_validation_errors_name_their_fields(api_client):
    body = assert_error(api_client.post("/api/v1/tags/", {}, format="json"), 400, "invalid", "name")
    assert body["detail"] == "Invalid input." and body["errors"]["name"] == ["This field is required."]


def test_business_rule_errors_have_the_same_shape(api_client, sandbox_account):
    body = assert_error(api_client.delete(f"/api/v1/tags/{sandbox_account.tag.pk}/"), 400, "invalid")
    assert set(body) == {"detail", "code"}


def test_rate_limit_per_token_answers_429_with_the_error_shape(api_client, agent_api, monkeypatch):
    cache.clear()
    # DRF reads the rates into the class once, at import: patch them there.
    monkeypatch.setattr(TokenRateThrottle, "THROTTLE_RATES", {"token": "3/min"})
    for _ in range(3):
        assert api_client.get("/api/v1/tags/").status_code == 200
    response = api_client.get("/api/v1/tags/")
    body = assert_error(response, 429, "throttled")
    assert "throttled" in body["detail"] and int(response["Retry-After"]) > 0
    assert agent_api.get("/api/v1/tags/").status_code == 200  # another token has its own budget
    cache.clear()


def test_cursor_pagination_and_page_size(api_client, location):
    tags = [tag_create(location=location, name=f"t{i:02}") for i in range(5)]
    first = api_client.get("/api/v1/tags/", {"page_size": 2}).json()
    assert [t["name"] for t in first["results"]] == ["t00", "t01"] and first["previous"] is None
    second = api_client.get(first["next"]).json()
    assert [t["name"] for t in second["results"]] == ["t02", "t03"]
    last = api_client.get(second["next"]).json()
    assert [t["name"] for t in last["results"]] == ["t04"] and last["next"] is None
    assert [t["name"] for t in api_client.get("/api/v1/tags/", {"ordering": "-name", "page_size": 1}).json()["results"]] == ["t04"]
    assert api_client.get("/api/v1/tags/", {"ordering": "nonsense"}).status_code == 200
    assert_error(api_client.get("/api/v1/tags/", {"cursor": "garbage"}), 404, "not_found")
    assert len(tags) == 5


def test_schema_and_docs_are_public(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in ("/api/v1/accounts/", "/api/v1/contacts/{id}/tags/{tag_name}/", "/api/v1/conversations/{id}/assign/",
                 "/api/v1/messages/", "/api/v1/routing-rules/{id}/", "/api/v1/users/{id}/", "/api/v1/tags/",
                 "/api/v1/webhooks/", "/api/v1/webhook-deliveries/{id}/replay/"):
        assert path in paths, path
    send = paths["/api/v1/messages/"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in send["parameters"])
    assert set(send["responses"]) >= {"201", "400", "401", "403", "404", "429"}
    assert client.get("/api/v1/docs/").status_code == 200


@pytest.fixture
def theirs(location, sandbox_account, agent_user):
    """One of each object of `location`, for a foreign token to try."""
    receive(sandbox_account)
    team = Team.objects.create(location=location, name="Support")
    return {
        "accounts": sandbox_account.pk,
        "contacts": Conversation.objects.get().contact_id,
        "tags": sandbox_account.tag.pk,
        "conversations": Conversation.objects.get().pk,
        "messages": Message.objects.get().pk,
        "routing-rules": RoutingRule.objects.create(location=location, name="r", target="unassigned").pk,
        "teams": team.pk,
        "users": agent_user.pk,
        "webhooks": hook_subscription_create(location=location, url="http://127.0.0.1:9/", events=["message.status"]).pk,
    }


def test_another_locations_objects_are_always_404(other_api, theirs, other_location):
    account_create(location=other_location, kind="whatsapp", backend="sandbox", name="own")
    for resource, pk in theirs.items():
        assert other_api.get(f"/api/v1/{resource}/").status_code == 200
        assert_error(other_api.get(f"/api/v1/{resource}/{pk}/"), 404, "not_found")
        if resource not in ("teams",):
            assert other_api.patch(f"/api/v1/{resource}/{pk}/", {}, format="json").status_code in (404, 405)
            assert other_api.delete(f"/api/v1/{resource}/{pk}/").status_code in (404, 405)
        listed = {row["id"] for row in other_api.get(f"/api/v1/{resource}/").json()["results"]}
        assert pk not in listed or resource == "accounts" and listed == set()


def test_agent_tokens_cannot_manage_location_settings(agent_api, theirs):
    for method, path in (("post", "/api/v1/accounts/"), ("post", "/api/v1/tags/"), ("post", "/api/v1/routing-rules/"),
                         ("get", "/api/v1/webhooks/"), ("post", "/api/v1/webhooks/"), ("get", "/api/v1/webhook-deliveries/"),
                         ("delete", f"/api/v1/routing-rules/{theirs['routing-rules']}/")):
        body = assert_error(getattr(agent_api, method)(path, {}, format="json"), 403, "permission_denied")
        assert "admin token" in body["detail"]


def test_unknown_api_address_answers_the_api_error_body(api_client):
    for method, path in (("get", "/api/v1/nothing-here/"), ("post", "/api/v1/conversations/1.5/retry/")):
        response = getattr(api_client, method)(path)
        assert response.status_code == 404 and response["Content-Type"] == "application/json"
        assert response.json()["code"] == "not_found"


def test_a_member_key_dies_with_the_membership(location, agent_user):
    from django.test import Client

    from accounts.models import Membership
    from accounts.services import api_token_create

    _, key = api_token_create(location=location, user=agent_user, name="agent")
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/conversations/").status_code == 200
    Membership.objects.filter(user=agent_user).delete()  # removed in the admin, say
    response = client.get("/api/v1/conversations/")
    assert response.status_code == 401 and "no longer in the location" in response.json()["detail"]
