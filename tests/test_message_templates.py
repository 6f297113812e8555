"""Message templates (issue 18, point 5): canned responses became templates with merge fields;
admins manage them (page, Django admin, API), every agent uses them from the composer's `/`
picker with the merge fields filled in for the conversation's contact."""
import json
import re

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from conversations.message_templates import template_create, template_update, templates_for
from conversations.models import Conversation, MessageTemplate
from tests.test_api_support import *  # noqa: F401,F403  (fixtures)
from tests.test_api_support import assert_error, receive
from whatsnap.errors import ApplicationError


@pytest.fixture
def conversation(sandbox_account):
    receive(sandbox_account, phone="+14155550123", name="Ada Lovelace", text="hello")
    return Conversation.objects.get()


# --- the migration: nothing of the canned responses is lost ------------------------------------
def test_canned_responses_become_templates(location):
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate([("conversations", "0015_message_provider_id_core")])
    old_apps = executor.loader.project_state([("conversations", "0015_message_provider_id_core")]).apps
    Canned = old_apps.get_model("conversations", "CannedResponse")
    Canned.objects.create(location_id=location.pk, shortcut="hours", text="We open at 9, {{first_name|there}}.")
    Canned.objects.create(location_id=location.pk, shortcut="thanks", text="Thank you!")
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(leaves)
    rows = {t.shortcut: t for t in MessageTemplate.objects.filter(location=location)}
    assert set(rows) == {"hours", "thanks"}
    assert rows["hours"].name == "hours" and rows["hours"].body == "We open at 9, {{first_name|there}}."
    assert rows["thanks"].body == "Thank you!"


# --- the service -------------------------------------------------------------------------------
def test_create_checks_merge_fields_names_and_shortcuts(location, other_location, admin_user):
    template = template_create(location=location, name="Opening hours", body="Hi {{first_name|there}}, we open at 9.",
                               shortcut="/Hours", created_by=admin_user)
    assert template.shortcut == "hours" and template.created_by == admin_user
    with pytest.raises(ApplicationError) as caught:
        template_create(location=location, name="Typo", body="Hi {{frist_name}}")
    assert caught.value.field == "body" and "{{frist_name}}" in caught.value.message
    for name, shortcut, field in [("opening HOURS", "", "name"), ("Other", "hours", "shortcut"), ("Spaces", "two words", "shortcut"),
                                  ("", "", "name")]:
        with pytest.raises(ApplicationError) as caught:
            template_create(location=location, name=name, body="x", shortcut=shortcut)
        assert caught.value.field == field, (name, shortcut)
    with pytest.raises(ApplicationError) as caught:
        template_create(location=location, name="Empty", body="   ")
    assert caught.value.field == "body"
    # another location has its own names and shortcuts
    template_create(location=other_location, name="Opening hours", body="x", shortcut="hours")
    assert [t.name for t in templates_for(location)] == ["Opening hours"]
    updated = template_update(template=template, body="Open 9-5, {{first_name}}")
    assert updated.name == "Opening hours" and MessageTemplate.objects.get(pk=template.pk).body == "Open 9-5, {{first_name}}"


# --- the Templates page ------------------------------------------------------------------------
def test_admins_manage_templates_on_the_page(admin_client, location):
    page = admin_client.get("/templates/").content.decode()
    assert 'id="template-form"' in page and "No templates yet" in page
    response = admin_client.post("/templates/", {"name": "Greeting", "shortcut": "hi", "body": "Hello {{first_name|there}}!"})
    assert response.status_code == 302
    template = MessageTemplate.objects.get(location=location)
    page = admin_client.get("/templates/").content.decode()
    assert "Greeting" in page and "/hi" in page and "Hello Ada!" in page  # the preview with the sample contact
    # an error is shown in place, with what was typed
    response = admin_client.post(f"/templates/{template.pk}/", {"name": "Greeting", "shortcut": "hi", "body": "Hello {{nam}}"})
    assert response.status_code == 200
    assert "Unknown merge field {{nam}}" in response.content.decode() and "Hello {{nam}}" in response.content.decode()
    assert MessageTemplate.objects.get().body == "Hello {{first_name|there}}!"
    admin_client.post(f"/templates/{template.pk}/", {"name": "Greeting", "shortcut": "", "body": "Hello {{name}}"})
    assert MessageTemplate.objects.get().body == "Hello {{name}}" and MessageTemplate.objects.get().shortcut == ""
    admin_client.post(f"/templates/{template.pk}/delete/")
    assert not MessageTemplate.objects.exists()


def test_agents_see_and_use_templates_but_do_not_manage_them(agent_client, location):
    template = template_create(location=location, name="Greeting", body="Hello!")
    page = agent_client.get("/templates/").content.decode()
    assert "Greeting" in page and 'id="template-form"' not in page and "Only admins add or change templates" in page
    assert agent_client.post("/templates/", {"name": "Mine", "body": "x"}).status_code == 403
    assert agent_client.post(f"/templates/{template.pk}/", {"name": "Mine", "body": "x"}).status_code == 403
    assert agent_client.post(f"/templates/{template.pk}/delete/").status_code == 403
    assert MessageTemplate.objects.get().name == "Greeting"


def test_another_locations_template_is_not_found(outsider_client, location):
    template = template_create(location=location, name="Greeting", body="Hello!")
    assert outsider_client.get(f"/templates/{template.pk}/").status_code == 404
    assert outsider_client.post(f"/templates/{template.pk}/delete/").status_code == 404
    assert "Greeting" not in outsider_client.get("/templates/").content.decode()
    assert MessageTemplate.objects.filter(pk=template.pk).exists()


# --- the composer ------------------------------------------------------------------------------
def test_the_composer_offers_templates_filled_in_for_the_contact(admin_client, location, conversation):
    template_create(location=location, name="Greeting", shortcut="hi", body="Hi {{first_name|there}}, {{agent}} from {{account}} here.")
    page = admin_client.get(f"/inbox/{conversation.pk}/").content.decode()
    data = json.loads(re.search(r'<script id="composer-templates" type="application/json">(.*?)</script>', page, re.S).group(1))
    assert data == [{"id": MessageTemplate.objects.get().pk, "name": "Greeting", "shortcut": "hi",
                     "text": "Hi Ada, owner from Sales here."}]
    assert 'aria-controls="template-picker"' in page


# --- the API -----------------------------------------------------------------------------------
def test_api_templates(api_client, agent_api, other_api, location, conversation):
    response = api_client.post("/api/v1/templates/", {"name": "Greeting", "shortcut": "hi", "body": "Hi {{first_name|there}}!"},
                               format="json")
    assert response.status_code == 201, response.json()
    pk = response.json()["id"]
    assert response.json()["body"] == "Hi {{first_name|there}}!" and response.json()["shortcut"] == "hi"
    assert_error(api_client.post("/api/v1/templates/", {"name": "Bad", "body": "Hi {{frist_name}}"}, format="json"),
                 400, field="body")
    assert_error(api_client.post("/api/v1/templates/", {"name": "greeting", "body": "x"}, format="json"), 400, "duplicate", "name")
    # agents read and render, but do not manage
    assert [row["name"] for row in agent_api.get("/api/v1/templates/").json()["results"]] == ["Greeting"]
    assert_error(agent_api.post("/api/v1/templates/", {"name": "Mine", "body": "x"}, format="json"), 403)
    assert_error(agent_api.patch(f"/api/v1/templates/{pk}/", {"name": "Mine"}, format="json"), 403)
    rendered = agent_api.post(f"/api/v1/templates/{pk}/render/", {"conversation": conversation.pk}, format="json")
    assert rendered.status_code == 200 and rendered.json() == {"text": "Hi Ada!"}
    response = api_client.patch(f"/api/v1/templates/{pk}/", {"body": "Hello {{name}}"}, format="json")
    assert response.status_code == 200 and response.json()["body"] == "Hello {{name}}" and response.json()["name"] == "Greeting"
    assert api_client.get("/api/v1/templates/?q=gree").json()["results"][0]["id"] == pk
    # another location sees nothing of it, nor renders it for our conversation
    assert_error(other_api.get(f"/api/v1/templates/{pk}/"), 404)
    assert other_api.get("/api/v1/templates/").json()["results"] == []
    assert_error(other_api.delete(f"/api/v1/templates/{pk}/"), 404)
    assert api_client.delete(f"/api/v1/templates/{pk}/").status_code == 204
    assert not MessageTemplate.objects.exists()
