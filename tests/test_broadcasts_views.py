"""Broadcast pages: admins compose (errors in place, live preview), everyone follows progress;
tenancy; CSV; live progress published at most once a second."""
import csv
import io

import pytest
from django.urls import reverse

from broadcasts import live
from broadcasts.models import Broadcast, BroadcastRecipient
from broadcasts.services import broadcast_create, broadcast_start
from contacts.models import Contact, ContactTag, Tag
from whatsnap.models import LiveEvent

R = BroadcastRecipient.Status


@pytest.fixture
def vip(location):
    tag = Tag.objects.create(location=location, name="vip")
    for i, (name, out) in enumerate([("Ann Lee", False), ("=HYPERLINK(\"x\")", False), ("Bo", True)]):
        contact = Contact.objects.create(location=location, phone=f"+1415555010{i}", name=name, opted_out=out)
        ContactTag.objects.create(contact=contact, tag=tag)
    return tag


def form(vip, account, **extra):
    return {"name": "Sale", "text": "Hi {{first_name|there}}!", "tags": [vip.pk], "match": "any",
            "account": str(account.pk), "when": "now", "confirmed": "1", **extra}


def test_admin_composes_and_sends_now(admin_client, vip, sandbox_account):
    response = admin_client.post(reverse("broadcast-new"), form(vip, sandbox_account))
    broadcast = Broadcast.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("broadcast-detail", args=[broadcast.pk])
    assert broadcast.status == Broadcast.Status.COMPLETED
    page = admin_client.get(response["Location"]).content.decode()
    assert 'data-live="broadcast:%d"' % broadcast.pk in page and "Opted out" in page
    assert 'data-count="delivered">2<' in page and 'data-count="skipped">1<' in page


def test_errors_are_shown_in_place(admin_client, vip, sandbox_account):
    response = admin_client.post(reverse("broadcast-new"), form(vip, sandbox_account, text="Hi {{frist}}"))
    assert response.status_code == 400 and "Unknown merge field" in response.content.decode()
    response = admin_client.post(reverse("broadcast-new"), form(vip, sandbox_account, when="at", scheduled_at=""))
    assert response.status_code == 400 and "Choose the day and time" in response.content.decode()
    assert not Broadcast.objects.exists()


def test_schedule_in_the_location_time_zone(admin_client, vip, sandbox_account):
    response = admin_client.post(reverse("broadcast-new"), form(vip, sandbox_account, when="at", scheduled_at="2099-01-05T09:30"))
    assert response.status_code == 302
    broadcast = Broadcast.objects.get()
    assert broadcast.status == "scheduled" and broadcast.scheduled_at.isoformat() == "2099-01-05T14:30:00+00:00"  # New York
    edit = admin_client.get(reverse("broadcast-edit", args=[broadcast.pk])).content.decode()
    assert 'value="2099-01-05T09:30"' in edit
    admin_client.post(reverse("broadcast-edit", args=[broadcast.pk]), form(vip, sandbox_account, when="draft", name="Later"))
    broadcast.refresh_from_db()
    assert broadcast.status == "draft" and broadcast.scheduled_at is None and broadcast.name == "Later"


def test_preview_counts_and_sample(admin_client, vip, sandbox_account):
    body = admin_client.post(reverse("broadcast-preview"), form(vip, sandbox_account)).content.decode()
    assert "<strong>2</strong> of 3 contacts will get it" in body and "Opted out" in body and "Hi Ann!" in body
    assert "<td>Sales</td><td>2</td>" in body.replace("\n", "").replace("    ", "") and "50 of 50 (warm-up day 1)" in body
    assert "Choose one or more tags" in admin_client.post(reverse("broadcast-preview"), {"name": ""}).content.decode()


def test_agents_follow_but_do_not_steer(agent_client, admin_user, vip, sandbox_account):
    broadcast = broadcast_create(location=vip.location, name="Sale", text="Hi", tag_ids=[vip.pk], account=sandbox_account)
    assert agent_client.get(reverse("broadcast-list")).status_code == 200
    assert agent_client.get(reverse("broadcast-detail", args=[broadcast.pk])).status_code == 200
    assert agent_client.get(reverse("broadcast-new")).status_code == 403
    assert agent_client.post(reverse("broadcast-action", args=[broadcast.pk, "start"])).status_code == 403
    assert Broadcast.objects.get().status == "draft"


def test_other_locations_broadcasts_are_404(outsider_client, vip, sandbox_account, other_location):
    broadcast = broadcast_create(location=vip.location, name="Sale", text="Hi", tag_ids=[vip.pk], account=sandbox_account)
    for name in ("broadcast-detail", "broadcast-progress", "broadcast-recipients", "broadcast-csv", "broadcast-edit"):
        assert outsider_client.get(reverse(name, args=[broadcast.pk])).status_code == 404, name
    assert outsider_client.post(reverse("broadcast-action", args=[broadcast.pk, "cancel"])).status_code == 404
    # its own composer refuses the other location's tag and account
    response = outsider_client.post(reverse("broadcast-new"), form(vip, sandbox_account))
    assert response.status_code == 400 and not Broadcast.objects.filter(location=other_location).exists()


def test_actions_and_recipient_filter(admin_client, vip, sandbox_account, monkeypatch):
    monkeypatch.setattr("conversations.sending.enqueue_account_drain", lambda *a, **k: None)
    broadcast = broadcast_create(location=vip.location, name="Sale", text="Hi", tag_ids=[vip.pk], account=sandbox_account)
    broadcast_start(broadcast=broadcast)
    admin_client.post(reverse("broadcast-action", args=[broadcast.pk, "pause"]))
    assert Broadcast.objects.get().status == "paused"
    page = admin_client.get(reverse("broadcast-detail", args=[broadcast.pk])).content.decode()
    assert "Paused by owner." in page and ">Resume<" in page
    skipped = admin_client.get(reverse("broadcast-recipients", args=[broadcast.pk]) + "?status=skipped").content.decode()
    assert skipped.count("data-recipient=") == 1 and "Opted out" in skipped
    admin_client.post(reverse("broadcast-action", args=[broadcast.pk, "cancel"]))
    assert Broadcast.objects.get().status == "cancelled"
    response = admin_client.post(reverse("broadcast-action", args=[broadcast.pk, "resume"]), follow=True)
    assert "Only a paused broadcast can be resumed." in response.content.decode()


def test_csv_of_results_is_streamed_and_safe(admin_client, vip, sandbox_account):
    broadcast = broadcast_create(location=vip.location, name="Sale", text="Hi", tag_ids=[vip.pk], account=sandbox_account)
    broadcast_start(broadcast=broadcast)
    response = admin_client.get(reverse("broadcast-csv", args=[broadcast.pk]))
    assert response.streaming and response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["status"] for r in rows] == ["delivered", "delivered", "skipped"]
    assert rows[1]["name"].startswith("'=") and rows[0]["phone"] == "+14155550100" and rows[0]["account"] == "Sales"


def test_progress_is_published_at_most_once_a_second(location, vip, sandbox_account, settings):
    settings.LIVE_EVENTS_VIA_DATABASE = True
    broadcast = broadcast_create(location=location, name="Sale", text="Hi", tag_ids=[vip.pk], account=sandbox_account)
    LiveEvent.objects.all().delete()
    assert live.publish_progress(broadcast_id=broadcast.pk, location_id=location.pk)
    assert not live.publish_progress(broadcast_id=broadcast.pk, location_id=location.pk)
    assert live.publish_progress(broadcast_id=broadcast.pk, location_id=location.pk, force=True)
    assert LiveEvent.objects.count() == 2
    assert LiveEvent.objects.first().payload["topics"] == [f"broadcast:{broadcast.pk}", "broadcasts"]


def test_account_page_and_settings_show_the_cap(admin_client, sandbox_account):
    page = admin_client.get(reverse("account-detail", args=[sandbox_account.pk])).content.decode()
    assert 'id="broadcast-cap"' in page and "<strong>50</strong> of 50 left today" in page and "warm-up day 1" in page
    settings_page = admin_client.get(reverse("account-settings", args=[sandbox_account.pk])).content.decode()
    assert "Broadcast messages a day" in settings_page and "Warm up a new number" in settings_page


def test_composer_offers_the_locations_templates(admin_client, location, other_location):
    from conversations.models import MessageTemplate

    MessageTemplate.objects.create(location=location, name="Spring", body="Hi {{first_name|there}} <3")
    MessageTemplate.objects.create(location=other_location, name="Theirs", body="not ours")
    page = admin_client.get(reverse("broadcast-new")).content.decode()
    assert 'data-body="Hi {{first_name|there}} &lt;3">Spring<' in page and "Theirs" not in page


def test_send_now_that_cannot_start_leaves_nothing(admin_client, location, sandbox_account):
    empty = Tag.objects.create(location=location, name="nobody")
    response = admin_client.post(reverse("broadcast-new"), {**form(empty, sandbox_account)})
    assert response.status_code == 400 and "No contact carries these tags" in response.content.decode()
    assert not Broadcast.objects.exists()


def test_send_now_asks_first_with_the_count_and_the_button_says_what_it_does(admin_client, vip, sandbox_account):
    page = admin_client.get(reverse("broadcast-new")).content.decode()
    assert ">Save draft</button>" in page and 'class="field-scheduled_at"' in page  # no script: the Time field is there
    data = form(vip, sandbox_account)
    del data["confirmed"]
    response = admin_client.post(reverse("broadcast-new"), data)
    page = response.content.decode()
    assert response.status_code == 200 and not Broadcast.objects.exists()  # asked, nothing saved or sent
    assert "This sends it to <strong>2</strong> contacts now." in page and ">Send to 2 contacts now</button>" in page
    assert '<input type="hidden" name="confirmed" value="1">' in page
    assert admin_client.post(reverse("broadcast-new"), {**data, "confirmed": "1"}).status_code == 302
    assert Broadcast.objects.get().status == Broadcast.Status.COMPLETED
    at = admin_client.post(reverse("broadcast-new"), form(vip, sandbox_account, when="at", scheduled_at="")).content.decode()
    assert ">Schedule</button>" in at


def test_no_tags_says_choose_a_tag(admin_client, vip, sandbox_account):
    response = admin_client.post(reverse("broadcast-new"), form(vip, sandbox_account, tags=[]))
    page = response.content.decode()
    assert response.status_code == 400 and "Choose at least one tag." in page and "This field is required." not in page


def test_preview_through_each_contacts_own_account_and_unknown_fields(admin_client, vip, sandbox_account):
    Contact.objects.filter(name="Ann Lee").update(active_account=sandbox_account)
    body = admin_client.post(reverse("broadcast-preview"), {**form(vip, sandbox_account, text="Hi {{first_name}} from {{account}}"), "account": ""}
                             ).content.decode()
    assert "Hi Ann from Sales" in body
    body = admin_client.post(reverse("broadcast-preview"), form(vip, sandbox_account, text="Hi {{firstname}}")).content.decode()
    assert 'id="preview-text-error"' in body and "firstname" in body and "As the first of them reads it" not in body


def test_pause_says_what_still_leaves_and_the_bar_is_on_top(admin_client, vip, sandbox_account, monkeypatch):
    monkeypatch.setattr("conversations.sending.enqueue_account_drain", lambda *a, **k: None)  # 2 stay in the queue
    broadcast = broadcast_create(location=vip.location, name="Sale", text="Hi", tag_ids=[vip.pk], account=sandbox_account)
    broadcast_start(broadcast=broadcast)
    running = admin_client.get(reverse("broadcast-progress", args=[broadcast.pk])).content.decode()
    assert running.index('id="broadcast-bar"') < running.index('id="broadcast-counts"')
    confirm = running.split("confirm('Pause this broadcast?")[1].split("')")[0]  # the pause button asks, saying it
    assert "2 already handed to the account\\u0027s queue will still leave\\u003B Cancel withdraws them." in confirm
    response = admin_client.post(reverse("broadcast-action", args=[broadcast.pk, "pause"]), follow=True)
    page = response.content.decode().replace("&#x27;", "'")
    said = "2 already handed to the account's queue will still leave; Cancel withdraws them."
    assert f"Paused. {said}" in page and f'<span id="still-leaving">{said}</span>' in page
    admin_client.post(reverse("broadcast-action", args=[broadcast.pk, "cancel"]))
    assert "still-leaving" not in admin_client.get(reverse("broadcast-progress", args=[broadcast.pk])).content.decode()
