"""/api/v1/routing-rules/ and /api/v1/teams/."""
from contacts.models import Contact
from contacts.services import tag_create
from conversations.models import Conversation
from routing.models import RoutingRule, Team
from tests.test_api_support import *  # noqa: F401,F403  (fixtures)
from tests.test_api_support import assert_error, receive


def test_create_rule_with_tags_by_name_and_id_and_it_routes(api_client, location, sandbox_account, agent_user):
    vip = tag_create(location=location, name="vip")
    payload = {"name": "Sales to the teammate", "position": 5, "tags": ["whatsnap-account-sales", vip.pk],
               "target": "user", "target_user": agent_user.pk}
    response = api_client.post("/api/v1/routing-rules/", payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["tags"] == ["vip", "whatsnap-account-sales"] and body["enabled"] is True
    assert (body["tag_mode"], body["hours"], body["target"], body["target_user"]) == ("any", "always", "user", agent_user.pk)
    receive(sandbox_account, phone="+14155550123")
    assert Conversation.objects.get().assignee == agent_user


def test_list_order_update_and_delete(api_client, location, agent_user):
    team = Team.objects.create(location=location, name="Support")
    second = api_client.post("/api/v1/routing-rules/", {"name": "b", "position": 20, "target": "unassigned"}, format="json").json()
    first = api_client.post("/api/v1/routing-rules/", {"name": "a", "position": 10, "target": "team", "target_team": team.pk},
                            format="json").json()
    assert [r["name"] for r in api_client.get("/api/v1/routing-rules/").json()["results"]] == ["a", "b"]
    response = api_client.patch(f"/api/v1/routing-rules/{second['id']}/", {"enabled": False, "position": 1}, format="json")
    assert response.status_code == 200 and response.json()["enabled"] is False and response.json()["name"] == "b"
    assert [r["name"] for r in api_client.get("/api/v1/routing-rules/").json()["results"]] == ["b", "a"]
    response = api_client.patch(f"/api/v1/routing-rules/{first['id']}/", {"tags": []}, format="json")
    assert response.status_code == 200 and response.json()["target_team"] == team.pk  # untouched fields stay
    assert api_client.delete(f"/api/v1/routing-rules/{first['id']}/").status_code == 204
    assert list(RoutingRule.objects.values_list("name", flat=True)) == ["b"]


def test_rule_validation(api_client, location, other_location, agent_user, outsider):
    theirs = tag_create(location=other_location, name="theirs")
    their_team = Team.objects.create(location=other_location, name="Theirs")
    post = lambda payload: api_client.post("/api/v1/routing-rules/", payload, format="json")  # noqa: E731
    assert_error(post({"name": "x", "target": "team"}), 400, "invalid", "target_team")
    assert_error(post({"name": "x", "target": "user"}), 400, "invalid", "target_user")
    assert_error(post({"name": "x", "target": "user", "target_user": outsider.pk}), 400, "invalid", "target_user")
    assert_error(post({"name": "x", "target": "team", "target_team": their_team.pk}), 400, "invalid", "target_team")
    assert_error(post({"name": "x", "target": "unassigned", "tags": [theirs.pk]}), 400, "invalid", "tags")
    assert_error(post({"name": "x", "target": "unassigned", "tags": ["nope"]}), 400, "invalid", "tags")
    assert_error(post({"name": "x", "target": "unassigned", "tags": [True]}), 400, "invalid", "tags")
    assert_error(post({"name": "x", "target": "unassigned", "platform": "fax"}), 400, "invalid", "platform")
    assert_error(post({"target": "unassigned"}), 400, "invalid", "name")
    assert not RoutingRule.objects.exists()


def test_agent_token_reads_rules_but_cannot_manage_them(agent_api, location):
    rule = RoutingRule.objects.create(location=location, name="r", target="unassigned")
    assert agent_api.get("/api/v1/routing-rules/").status_code == 200
    body = assert_error(agent_api.post("/api/v1/routing-rules/", {"name": "x", "target": "unassigned"}, format="json"),
                        403, "permission_denied")
    assert "routing rules" in body["detail"]
    assert_error(agent_api.patch(f"/api/v1/routing-rules/{rule.pk}/", {"enabled": False}, format="json"), 403)
    assert_error(agent_api.delete(f"/api/v1/routing-rules/{rule.pk}/"), 403)


def test_other_locations_rules_and_teams_are_404(other_api, location):
    rule = RoutingRule.objects.create(location=location, name="r", target="unassigned")
    team = Team.objects.create(location=location, name="Support")
    assert other_api.get("/api/v1/routing-rules/").json()["results"] == []
    assert_error(other_api.get(f"/api/v1/routing-rules/{rule.pk}/"), 404)
    assert_error(other_api.patch(f"/api/v1/routing-rules/{rule.pk}/", {"enabled": False}, format="json"), 404)
    assert_error(other_api.delete(f"/api/v1/routing-rules/{rule.pk}/"), 404)
    assert_error(other_api.get(f"/api/v1/teams/{team.pk}/"), 404)
    assert RoutingRule.objects.get().enabled


def test_teams_list(api_client, location, agent_user):
    team = Team.objects.create(location=location, name="Support", strategy="least_open")
    team.members.set([agent_user])
    assert api_client.get("/api/v1/teams/").json()["results"] == [
        {"id": team.pk, "name": "Support", "strategy": "least_open", "sticky": True, "members": [agent_user.pk],
         "waiting": 0, "oldest_waiting_since": None}]
    assert not Contact.objects.exists()
