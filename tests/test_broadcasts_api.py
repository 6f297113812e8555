"""/api/v1/broadcasts/: create (now, scheduled, own account), read with counts, recipients,
pause/resume/cancel, edit until it starts; agent tokens read only; other locations' ids refused;
the outgoing webhook event broadcast.status."""
from datetime import timedelta

import pytest
from django.utils import timezone

from broadcasts.models import Broadcast
from contacts.models import Contact, ContactTag, Tag
from hooks.models import WebhookDelivery
from hooks.services import hook_subscription_create
from tests.test_api_support import agent_api, other_api  # noqa: F401  (fixtures)


@pytest.fixture
def vip(location):
    tag = Tag.objects.create(location=location, name="vip")
    for i, out in enumerate([False, False, True]):
        contact = Contact.objects.create(location=location, phone=f"+1415555020{i}", name=f"P{i}", opted_out=out)
        ContactTag.objects.create(contact=contact, tag=tag)
    return tag


def test_create_and_start_reads_counts_and_recipients(api_client, vip, sandbox_account):
    answer = api_client.post("/api/v1/broadcasts/", {"name": "Sale", "text": "Hi {{first_name}}", "tag_ids": [vip.pk],
                                                     "account": sandbox_account.pk, "start": True}, format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["status"] == "completed" and body["counts"]["delivered"] == 2 and body["counts"]["skipped"] == 1
    assert body["counts"]["total"] == 3
    listed = api_client.get("/api/v1/broadcasts/?status=completed").json()["results"]
    assert [b["id"] for b in listed] == [body["id"]]
    rows = api_client.get(f"/api/v1/broadcasts/{body['id']}/recipients/?status=skipped").json()["results"]
    assert len(rows) == 1 and rows[0]["reason"].startswith("Opted out") and rows[0]["message"] is None


def test_scheduled_then_edited_then_cancelled(api_client, vip, sandbox_account):
    at = (timezone.now() + timedelta(days=1)).isoformat()
    body = api_client.post("/api/v1/broadcasts/", {"name": "Later", "text": "Hi", "tag_ids": [vip.pk], "scheduled_at": at},
                           format="json").json()
    assert body["status"] == "scheduled" and body["account"] is None
    edited = api_client.patch(f"/api/v1/broadcasts/{body['id']}/", {"text": "Hello {{name}}"}, format="json")
    assert edited.status_code == 200 and edited.json()["text"] == "Hello {{name}}" and edited.json()["status"] == "scheduled"
    bad = api_client.patch(f"/api/v1/broadcasts/{body['id']}/", {"text": "Hello {{nme}}"}, format="json")
    assert bad.status_code == 400 and "text" in bad.json()["errors"]
    cancelled = api_client.post(f"/api/v1/broadcasts/{body['id']}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    again = api_client.post(f"/api/v1/broadcasts/{body['id']}/cancel/")
    assert again.status_code == 400 and again.json()["code"] == "finished"


def test_pause_and_resume(api_client, vip, sandbox_account, monkeypatch):
    monkeypatch.setattr("conversations.sending.enqueue_account_drain", lambda *a, **k: None)
    body = api_client.post("/api/v1/broadcasts/", {"name": "Sale", "text": "Hi", "tag_ids": [vip.pk],
                                                   "account": sandbox_account.pk, "start": True}, format="json").json()
    assert body["status"] == "running" and body["counts"]["queued"] == 2
    paused = api_client.post(f"/api/v1/broadcasts/{body['id']}/pause/").json()
    assert paused["status"] == "paused" and paused["pause_kind"] == "person"
    assert api_client.post(f"/api/v1/broadcasts/{body['id']}/resume/").json()["status"] == "running"


def test_ids_of_another_location_are_refused(api_client, vip, sandbox_account, other_location, other_api):  # noqa: F811
    foreign_tag = Tag.objects.create(location=other_location, name="x")
    answer = api_client.post("/api/v1/broadcasts/", {"name": "S", "text": "Hi", "tag_ids": [foreign_tag.pk]}, format="json")
    assert answer.status_code == 400 and answer.json()["errors"] == {"tag_ids": ["Choose tags of this location."]}
    mine = api_client.post("/api/v1/broadcasts/", {"name": "S", "text": "Hi", "tag_ids": [vip.pk]}, format="json").json()
    assert other_api.get(f"/api/v1/broadcasts/{mine['id']}/").status_code == 404
    assert other_api.post(f"/api/v1/broadcasts/{mine['id']}/start/").status_code == 404
    answer = other_api.post("/api/v1/broadcasts/", {"name": "S", "text": "Hi", "tag_ids": [vip.pk],
                                                    "account": sandbox_account.pk}, format="json")
    assert answer.status_code == 400 and "account" in answer.json()["errors"]


def test_agent_tokens_read_only(api_client, agent_api, vip, sandbox_account):  # noqa: F811
    mine = api_client.post("/api/v1/broadcasts/", {"name": "S", "text": "Hi", "tag_ids": [vip.pk]}, format="json").json()
    assert agent_api.get(f"/api/v1/broadcasts/{mine['id']}/").status_code == 200
    assert agent_api.post("/api/v1/broadcasts/", {"name": "S", "text": "Hi", "tag_ids": [vip.pk]}, format="json").status_code == 403
    assert agent_api.post(f"/api/v1/broadcasts/{mine['id']}/start/").status_code == 403
    assert Broadcast.objects.get().status == "draft"


def test_outgoing_webhook_event(api_client, location, vip, sandbox_account):
    hook_subscription_create(location=location, url="http://127.0.0.1:9/hook", events=["broadcast.status"])
    api_client.post("/api/v1/broadcasts/", {"name": "Sale", "text": "Hi", "tag_ids": [vip.pk], "account": sandbox_account.pk,
                                            "start": True}, format="json")
    payloads = [d.payload["data"] for d in WebhookDelivery.objects.filter(event="broadcast.status").order_by("id")]
    assert [(p["previous"], p["status"]) for p in payloads] == [("draft", "running"), ("running", "completed")]
    assert payloads[-1]["counts"]["delivered"] == 2 and payloads[-1]["name"] == "Sale"


def test_a_refused_start_leaves_no_draft(api_client, location, sandbox_account):
    empty = Tag.objects.create(location=location, name="nobody")
    answer = api_client.post("/api/v1/broadcasts/", {"name": "S", "text": "Hi", "tag_ids": [empty.pk], "start": True}, format="json")
    assert answer.status_code == 400 and answer.json()["errors"] == {"tag_ids": ["No contact carries these tags: nobody would get it."]}
    assert not Broadcast.objects.exists()
