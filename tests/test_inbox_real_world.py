"""What agents see and do with issue 17's real-world events (points 7, 8 and 9): messages typed
on the phone, imported history, quoted replies, reactions (both ways), edits, deletions, group
system items, live updates of an open thread, read receipts, and the account settings for
them. Events arrive as signed sandbox webhooks (the same path as a real backend)."""
import json

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AccountSettingsChange
from accounts.providers.base import ProviderError
from accounts.providers.sandbox import SandboxProvider, sign
from accounts.services import account_connect, account_create
from conversations.models import Conversation, ConversationEvent, Message, MessageReaction
from conversations.services import message_send
from whatsnap import events
from whatsnap.errors import ApplicationError
from whatsnap.models import LiveEvent


def post(account, payload: dict):
    body = json.dumps(payload).encode()
    response = Client().post(f"/webhooks/sandbox/{account.pk}/", data=body, content_type="application/json",
                             HTTP_X_SANDBOX_SIGNATURE=sign(account.webhook_secret, body))
    assert response.status_code == 200, response.content
    return response


def write(account, pid, text="hello", phone="+14155550123", **extra) -> Message:
    post(account, {"id": pid, "from": phone, "name": "Ada", "text": text, **extra})
    return Message.objects.get(account=account, provider_message_id=pid)


def thread_html(client, message) -> str:
    response = client.get(f"/inbox/{message.conversation_id}/thread/")
    assert response.status_code == 200
    return response.content.decode()


def bubble(html: str, message) -> str:
    """The HTML of one message's bubble (up to the next bubble or group item)."""
    start = html.rindex('<div class="bubble', 0, html.index(f'data-message="{message.pk}"'))
    ends = [i for i in (html.find('<div class="bubble', start + 1), html.find('<div class="chat-event', start)) if i != -1]
    return html[start:min(ends) if ends else None]


def live_events(name: str) -> list[dict]:
    return [row.payload for row in LiveEvent.objects.order_by("id") if row.payload["event"] == name]


@pytest.fixture
def mac_account(location):
    account = account_create(location=location, kind="imessage", backend="sandbox", name="Mac", phone_number="+14155550112")
    account_connect(account=account)
    account.refresh_from_db()
    return account


@pytest.fixture
def twilio_thread(twilio_account):
    from accounts.providers.base import InboundMessage
    from conversations.services import webhook_events_record

    webhook_events_record(account=twilio_account, events=[InboundMessage(
        provider_id="SM1", from_phone="+14155550123", name="Ada", text="from twilio", at=timezone.now())])
    return Message.objects.get(provider_message_id="SM1")


# --- what the thread shows -----------------------------------------------------------------------
def test_messages_typed_on_the_device_show_from_the_phone_or_the_mac(admin_client, sandbox_account, mac_account):
    first = write(sandbox_account, "in-1")
    post(sandbox_account, {"type": "from_me", "id": "me-1", "to": "+14155550123", "text": "Typed on my phone"})
    typed = Message.objects.get(provider_message_id="me-1")
    assert typed.via_device and typed.direction == "outbound" and typed.conversation_id == first.conversation_id
    html = bubble(thread_html(admin_client, typed), typed)
    assert "Typed on my phone" in html and "from the phone" in html and 'class="bubble outbound' in html
    assert "from the phone" not in bubble(thread_html(admin_client, first), first)
    write(mac_account, "mac-in")
    post(mac_account, {"type": "from_me", "id": "mac-me", "to": "+14155550123", "text": "From the iPhone"})
    on_mac = Message.objects.get(provider_message_id="mac-me")
    assert "from the Mac" in bubble(thread_html(admin_client, on_mac), on_mac)


def test_imported_history_is_marked_subtly(admin_client, sandbox_account):
    message = write(sandbox_account, "in-1")
    Message.objects.filter(pk=message.pk).update(is_history=True)
    html = bubble(thread_html(admin_client, message), message)
    assert "imported" in html and "bubble inbound history" in html


def test_quoted_reply_shows_what_it_quotes_and_links_to_the_original(admin_client, sandbox_account):
    original = write(sandbox_account, "in-1", text="Do you have it in blue?")
    quoting = write(sandbox_account, "in-2", text="…and in red?", reply_to="in-1", quoted_text="Do you have it in blue?")
    unknown = write(sandbox_account, "in-3", text="this one", reply_to="gone-long-ago", quoted_text="an old message")
    html = thread_html(admin_client, original)
    quote = bubble(html, quoting)
    assert f'href="#msg-{original.pk}" data-quote="{original.pk}"' in quote and "Do you have it in blue?" in quote
    assert f'id="msg-{original.pk}"' in html  # the anchor the quote scrolls to
    assert '<div class="quote">an old message</div>' in bubble(html, unknown)  # not here: the text, no link


def test_reactions_show_as_chips_with_who(admin_client, admin_user, sandbox_account):
    message = write(sandbox_account, "in-1")
    post(sandbox_account, {"type": "reaction", "target": "in-1", "emoji": "👍", "from": "+14155550123"})
    post(sandbox_account, {"type": "reaction", "target": "in-1", "emoji": "👍", "from_me": True})
    html = bubble(thread_html(admin_client, message), message)
    assert '👍 <span class="who">Ada, Sales</span>' in html  # the contact, and the account (its own phone)
    MessageReaction.objects.filter(actor_key="me").update(author=admin_user, emoji="❤️")
    html = bubble(thread_html(admin_client, message), message)
    assert "❤️ <span class=\"who\">owner</span>" in html and "👍 <span class=\"who\">Ada</span>" in html


def test_edited_message_shows_new_text_and_only_admins_see_the_earlier_one(admin_client, agent_client, sandbox_account):
    message = write(sandbox_account, "in-1", text="See you at 5")
    post(sandbox_account, {"type": "edit", "target": "in-1", "text": "See you at 6", "from": "+14155550123"})
    admin_view, agent_view = bubble(thread_html(admin_client, message), message), bubble(thread_html(agent_client, message), message)
    for html in (admin_view, agent_view):
        assert "See you at 6" in html and "edited" in html
    assert "See you at 5" in admin_view and "See you at 5" not in agent_view


def test_deleted_message_is_marked_and_only_admins_see_what_it_said(admin_client, agent_client, sandbox_account):
    message = write(sandbox_account, "in-1", text="my card number is 4111")
    post(sandbox_account, {"type": "delete", "target": "in-1", "from": "+14155550123"})
    admin_view, agent_view = bubble(thread_html(admin_client, message), message), bubble(thread_html(agent_client, message), message)
    for html in (admin_view, agent_view):
        assert "This message was deleted" in html and "React" not in html and "data-reply" not in html
    assert "4111" in admin_view and "admins only" in admin_view
    assert "4111" not in agent_view


def test_group_system_items_appear_in_the_thread_at_their_time(admin_client, sandbox_account):
    group = {"group_id": "120363@g.us", "group_name": "Sales team"}
    before = write(sandbox_account, "g-1", text="first", at=timezone.now().timestamp() - 60, **group)
    conversation = Conversation.objects.get(pk=before.conversation_id)
    post(sandbox_account, {"type": "chat_event", "id": "ce-1", "group_id": "120363@g.us", "text": "Ana added Bob",
                           "at": timezone.now().timestamp() - 30})
    after = write(sandbox_account, "g-2", text="second", **group)
    assert ConversationEvent.objects.get(kind="chat").reason == "Ana added Bob"
    html = thread_html(admin_client, before)
    assert html.index('id="msg-%d"' % before.pk) < html.index("Ana added Bob") < html.index('id="msg-%d"' % after.pk)
    panel = admin_client.get(f"/inbox/{conversation.pk}/panel/").content.decode()
    assert "Group event: Ana added Bob" in panel


def test_a_group_item_among_older_messages_comes_with_their_page(admin_client, sandbox_account):
    from datetime import timedelta

    first = write(sandbox_account, "g-0", text="message 0", group_id="120363@g.us", group_name="Sales team")
    base = timezone.now() - timedelta(hours=3)
    Message.objects.filter(pk=first.pk).update(sent_at=base)
    Message.objects.bulk_create([
        Message(location=first.location, conversation=first.conversation, account=sandbox_account, direction="inbound",
                text=f"message {i}", status="received", provider_message_id=f"bulk{i}", sent_at=base + timedelta(seconds=i))
        for i in range(1, 130)])
    ConversationEvent.objects.create(conversation=first.conversation, kind="chat", reason="Ana left", at=base + timedelta(seconds=10.5))
    newest = thread_html(admin_client, first)
    assert "Ana left" not in newest  # it is among the older messages
    cursor = Message.objects.get(text="message 30").pk
    older = admin_client.get(f"/inbox/{first.conversation_id}/thread/?before={cursor}").content.decode()
    assert older.index("message 10<") < older.index("Ana left") < older.index("message 11<")


def test_an_open_thread_hears_every_change(sandbox_account):
    message = write(sandbox_account, "in-1")
    LiveEvent.objects.all().delete()
    post(sandbox_account, {"type": "from_me", "id": "me-1", "to": "+14155550123", "text": "from the phone"})
    post(sandbox_account, {"type": "reaction", "target": "in-1", "emoji": "😂", "from": "+14155550123"})
    post(sandbox_account, {"type": "edit", "target": "in-1", "text": "hello!", "from": "+14155550123"})
    post(sandbox_account, {"type": "delete", "target": "in-1", "from": "+14155550123"})
    topic = f"conversation:{message.conversation_id}"
    for name in ("message.sent_from_device", "message.reacted", "message.edited", "message.deleted"):
        (payload,) = live_events(name)
        assert topic in payload["topics"] and f"sandbox:{sandbox_account.pk}" in payload["topics"], name
    assert "inbox" in live_events("message.edited")[0]["topics"]  # the list's preview may change


def test_a_group_event_is_pushed_live(sandbox_account):
    write(sandbox_account, "g-1", group_id="120363@g.us", group_name="Sales team")
    post(sandbox_account, {"type": "chat_event", "id": "ce-1", "group_id": "120363@g.us", "text": "Group renamed to Sales"})
    (payload,) = live_events("conversation.chat_event")
    assert payload["topics"][0] == f"conversation:{Conversation.objects.get().pk}"


# --- replying to a specific message -----------------------------------------------------------------
def test_agent_quote_replies_and_the_backend_gets_the_quoted_id(admin_client, sandbox_account, monkeypatch):
    sent = []
    real_send = SandboxProvider.send
    monkeypatch.setattr(SandboxProvider, "send", lambda self, account, **kw: sent.append(kw) or real_send(self, account, **kw))
    original = write(sandbox_account, "in-1", text="Is it in stock?")
    response = admin_client.post(f"/inbox/{original.conversation_id}/reply/", {"text": "Yes!", "reply_to": original.pk},
                                 HTTP_HX_REQUEST="true")
    reply = Message.objects.get(direction="outbound")
    assert (reply.reply_to, reply.reply_to_provider_id, reply.quoted_text) == (original, "in-1", "Is it in stock?")
    assert sent[0]["reply_to"] == "in-1"
    assert f'data-quote="{original.pk}"' in bubble(response.content.decode(), reply)


def test_a_reply_quotes_only_a_message_of_its_own_conversation(admin_client, sandbox_account, other_location):
    mine = write(sandbox_account, "in-1")
    elsewhere = write(sandbox_account, "in-2", phone="+14155550124")
    response = admin_client.post(f"/inbox/{mine.conversation_id}/reply/", {"text": "x", "reply_to": elsewhere.pk})
    assert response.status_code == 404
    theirs = account_create(location=other_location, kind="android_sms", backend="sandbox", name="x", phone_number="+14155550119")
    account_connect(account=theirs)
    foreign = write(theirs, "their-1")
    assert admin_client.post(f"/inbox/{mine.conversation_id}/reply/", {"text": "x", "reply_to": foreign.pk}).status_code == 404
    conversation = Conversation.objects.get(pk=mine.conversation_id)
    with pytest.raises(ApplicationError, match="same conversation"):
        message_send(conversation=conversation, text="x", reply_to=elsewhere)
    Message.objects.filter(pk=mine.pk).update(deleted_at=timezone.now())
    mine.refresh_from_db()
    with pytest.raises(ApplicationError, match="deleted"):
        message_send(conversation=conversation, text="x", reply_to=mine)
    assert not Message.objects.filter(direction="outbound").exists()


# --- reacting from the inbox ------------------------------------------------------------------------
@pytest.fixture
def reacted(monkeypatch):
    calls = []
    monkeypatch.setattr(SandboxProvider, "react", lambda self, account, **kw: calls.append(kw))
    return calls


def test_agent_reacts_from_the_inbox_through_the_backend(admin_client, admin_user, sandbox_account, reacted):
    message = write(sandbox_account, "in-1")
    assert "React" in bubble(thread_html(admin_client, message), message)
    with events.captured() as recorded:
        response = admin_client.post(f"/inbox/messages/{message.pk}/react/", {"emoji": "👍"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "👍 <span class=\"who\">owner</span>" in response.content.decode()
    reaction = MessageReaction.objects.get()
    assert (reaction.actor_key, reaction.author, reaction.emoji) == ("me", admin_user, "👍")
    (event,) = [e for e in recorded if e.name == "message.reacted"]
    assert event.data == {"message": message, "emoji": "👍", "previous": "", "actor_key": "me", "author": admin_user}
    assert reacted == [{"to": "+14155550123", "target_id": "in-1", "target_from_me": False, "emoji": "👍"}]
    admin_client.post(f"/inbox/messages/{message.pk}/react/", {"emoji": "❤️"}, HTTP_HX_REQUEST="true")
    assert list(MessageReaction.objects.values_list("emoji", flat=True)) == ["❤️"]  # one per side, changed
    page = admin_client.post(f"/inbox/messages/{message.pk}/react/", {"emoji": ""}, HTTP_HX_REQUEST="true").content.decode()
    assert not MessageReaction.objects.exists() and reacted[-1]["emoji"] == "" and '❤️ <span' not in bubble(page, message)
    outbound = message_send(conversation=message.conversation, text="our reply")
    outbound.refresh_from_db()
    admin_client.post(f"/inbox/messages/{outbound.pk}/react/", {"emoji": "🙏"})
    assert reacted[-1]["target_from_me"] is True and reacted[-1]["target_id"] == outbound.provider_message_id


def test_a_reaction_the_backend_refuses_is_taken_back_with_the_reason(admin_client, admin_user, sandbox_account, monkeypatch):
    message = write(sandbox_account, "in-1")
    admin_client.post(f"/inbox/messages/{message.pk}/react/", {"emoji": "👍"})
    monkeypatch.setattr(SandboxProvider, "react", lambda self, account, **kw: (_ for _ in ()).throw(ProviderError("gateway down")))
    LiveEvent.objects.all().delete()
    page = admin_client.post(f"/inbox/messages/{message.pk}/react/", {"emoji": "😂"}, HTTP_HX_REQUEST="true").content.decode()
    reaction = MessageReaction.objects.get()
    assert (reaction.emoji, reaction.author) == ("👍", admin_user)  # what the platform still shows
    assert "😂 <span" not in bubble(page, message)
    (failed,) = live_events("message.reaction_failed")
    assert failed["data"]["error"] == "The reaction 😂 was not sent: gateway down"
    assert failed["topics"] == [f"conversation:{message.conversation_id}"]
    admin_client.post(f"/inbox/messages/{message.pk}/react/", {"emoji": ""})
    assert MessageReaction.objects.get().emoji == "👍"
    assert "was not removed: gateway down" in live_events("message.reaction_failed")[-1]["data"]["error"]


def test_reactions_are_offered_only_where_the_backend_can_send_them(admin_client, sandbox_account, twilio_thread, reacted):
    assert "React</summary>" not in bubble(thread_html(admin_client, twilio_thread), twilio_thread)
    response = admin_client.post(f"/inbox/messages/{twilio_thread.pk}/react/", {"emoji": "👍"}, HTTP_HX_REQUEST="true")
    assert "cannot send reactions" in response.content.decode() and not MessageReaction.objects.exists()
    message = write(sandbox_account, "in-1")
    for bad in ("hello", "👍x", "\u202e👍"):
        page = admin_client.post(f"/inbox/messages/{message.pk}/react/", {"emoji": bad}, HTTP_HX_REQUEST="true").content.decode()
        assert "A reaction is one emoji" in page
    note = Message.objects.create(location=message.location, conversation=message.conversation, account=sandbox_account,
                                  direction="outbound", is_note=True, text="psst", status="sent")
    assert "private note" in admin_client.post(f"/inbox/messages/{note.pk}/react/", {"emoji": "👍"},
                                               HTTP_HX_REQUEST="true").content.decode()
    assert not MessageReaction.objects.exists() and reacted == []


def test_another_locations_message_cannot_be_reacted_to(outsider_client, sandbox_account, reacted):
    message = write(sandbox_account, "in-1")
    assert outsider_client.post(f"/inbox/messages/{message.pk}/react/", {"emoji": "👍"}).status_code == 404
    assert not MessageReaction.objects.exists() and reacted == []


# --- read receipts ----------------------------------------------------------------------------------
@pytest.fixture
def marked(monkeypatch):
    calls = []
    monkeypatch.setattr(SandboxProvider, "mark_read", lambda self, account, **kw: calls.append(kw))
    return calls


def test_opening_a_conversation_marks_each_message_read_once(admin_client, sandbox_account, marked):
    first = write(sandbox_account, "in-1")
    write(sandbox_account, "in-2")
    post(sandbox_account, {"type": "from_me", "id": "me-1", "to": "+14155550123", "text": "ours"})
    admin_client.get(f"/inbox/{first.conversation_id}/")
    assert marked == [{"to": "+14155550123", "provider_ids": ["in-1", "in-2"]}]
    admin_client.get(f"/inbox/{first.conversation_id}/thread/")  # the live refresh: nothing new
    assert len(marked) == 1
    write(sandbox_account, "in-3")
    admin_client.get(f"/inbox/{first.conversation_id}/thread/")
    assert marked[-1]["provider_ids"] == ["in-3"]
    assert Conversation.objects.get().read_receipt_through == Message.objects.get(provider_message_id="in-3").pk


def test_read_receipts_follow_the_setting_and_the_backend(admin_client, sandbox_account, twilio_thread, marked):
    sandbox_account.send_read_receipts = False
    sandbox_account.save(update_fields=["send_read_receipts"])
    message = write(sandbox_account, "in-1")
    admin_client.get(f"/inbox/{message.conversation_id}/")
    assert marked == []
    assert admin_client.get(f"/inbox/{twilio_thread.conversation_id}/").status_code == 200  # Twilio has none: nothing asked
    assert Conversation.objects.get(pk=twilio_thread.conversation_id).read_receipt_through == 0


def test_a_failed_read_receipt_is_logged_never_shown_and_retried_when_transient(admin_client, sandbox_account, monkeypatch, caplog):
    calls = []

    def failing(self, account, **kw):
        calls.append(kw)
        raise ProviderError("gateway timeout", transient=transient["on"])

    transient = {"on": True}
    monkeypatch.setattr(SandboxProvider, "mark_read", failing)
    message = write(sandbox_account, "in-1")
    page = admin_client.get(f"/inbox/{message.conversation_id}/")
    assert page.status_code == 200 and "gateway timeout" not in page.content.decode()
    assert "read receipt" in caplog.text and "gateway timeout" in caplog.text
    assert Conversation.objects.get().read_receipt_through == 0  # given back
    transient["on"] = False
    admin_client.get(f"/inbox/{message.conversation_id}/thread/")
    assert len(calls) == 2 and Conversation.objects.get().read_receipt_through == message.pk  # not again
    admin_client.get(f"/inbox/{message.conversation_id}/thread/")
    assert len(calls) == 2


# --- the account's settings -------------------------------------------------------------------------
def _settings_form(**values) -> dict:
    return {"name": "Sales", "send_per_minute": 30, "send_jitter_seconds": 2, "typing_delay_seconds": 0, "hours_text": "", **values}


def test_receipts_history_and_quiet_alert_settings_are_validated_and_audited(admin_client, admin_user, sandbox_account):
    url = f"/accounts/{sandbox_account.pk}/settings/"
    page = admin_client.get(url).content.decode()
    assert 'name="send_read_receipts"' in page and 'name="quiet_alert_minutes"' in page
    bad = admin_client.post(url, _settings_form(send_read_receipts="on", quiet_alert_minutes=2)).content.decode()
    assert "between 5 minutes and a week" in bad and not AccountSettingsChange.objects.exists()
    admin_client.post(url, _settings_form(quiet_alert_minutes=30))  # the box unticked: receipts off
    sandbox_account.refresh_from_db()
    assert not sandbox_account.send_read_receipts and sandbox_account.quiet_alert_minutes == 30
    change = AccountSettingsChange.objects.get()
    assert change.actor == admin_user
    assert change.changes == {"send_read_receipts": [True, False], "quiet_alert_minutes": [0, 30]}


def test_history_days_are_offered_where_the_backend_imports_history(admin_client, location, monkeypatch):
    from accounts.providers.waha import WahaProvider

    account = account_create(location=location, kind="whatsapp", backend="waha", name="wa")
    url = f"/accounts/{account.pk}/settings/"
    monkeypatch.setattr(WahaProvider, "supports_history", True)
    assert 'name="history_days"' in admin_client.get(url).content.decode()
    bad = admin_client.post(url, _settings_form(name="wa", history_days=400, send_read_receipts="on")).content.decode()
    assert "Between 0 (import nothing) and 90 days." in bad
    admin_client.post(url, _settings_form(name="wa", history_days=3, send_read_receipts="on"))
    account.refresh_from_db()
    assert account.history_days == 3
    monkeypatch.setattr(WahaProvider, "supports_history", False)
    monkeypatch.setattr(WahaProvider, "supports_read_receipts", False)
    page = admin_client.get(url).content.decode()
    assert 'name="history_days"' not in page and 'name="send_read_receipts"' not in page


# --- the sandbox phone ------------------------------------------------------------------------------
def test_the_sandbox_reads_every_kind_of_event_and_keeps_the_rest_unfiled(sandbox_account):
    from accounts.providers import get_provider
    from accounts.providers.base import InboundMessage, MessageDeleted, MessageEdited, Reaction, Unfiled, WebhookMalformed
    from conversations.models import InboundEvent

    parse = lambda envelope: get_provider("sandbox").parse_envelope(sandbox_account, envelope)  # noqa: E731
    (typed,) = parse({"type": "from_me", "id": "me-1", "to": "+14155550123", "text": "hi", "reply_to": "in-1", "quoted_text": "q"})
    assert isinstance(typed, InboundMessage) and typed.from_me and typed.from_phone == "+14155550123"
    assert (typed.reply_to, typed.quoted_text) == ("in-1", "q")
    (reaction,) = parse({"type": "reaction", "target": "in-1", "emoji": "👍", "from": "+14155550123"})
    assert reaction == Reaction(provider_id="in-1:+14155550123:👍", target_id="in-1", emoji="👍", at=reaction.at,
                                from_phone="+14155550123", chat="+14155550123")
    assert parse({"type": "reaction", "target": "in-1", "emoji": "", "from_me": True})[0].from_me
    (edit,) = parse({"type": "edit", "target": "in-1", "text": "new"})
    assert isinstance(edit, MessageEdited) and edit.provider_id.startswith("in-1:") and edit.text == "new"
    assert isinstance(parse({"type": "delete", "target": "in-1"})[0], MessageDeleted)
    (unknown,) = parse({"type": "typing", "id": "t-1", "from": "+14155550123"})
    assert unknown == Unfiled(reason="unsupported event type 'typing'", envelope={"type": "typing", "id": "t-1", "from": "+14155550123"},
                              key="t-1")
    with pytest.raises(WebhookMalformed, match="reaction not understood"):
        parse({"type": "reaction", "emoji": "👍"})
    post(sandbox_account, {"type": "typing", "id": "t-2", "from": "+14155550123"})
    kept = InboundEvent.objects.get(kind="unfiled")
    assert kept.status == "unfiled" and kept.error == "unsupported event type 'typing'" and kept.payload["envelope"]["id"] == "t-2"


def test_the_sandbox_phone_reacts_quotes_edits_deletes_and_types_as_the_account(admin_client, sandbox_account):
    url, phone = f"/sandbox/{sandbox_account.pk}/send/", "+14155550177"
    act = lambda **form: admin_client.post(url, {"phone": phone, "name": "Grace", **form}).content.decode()  # noqa: E731
    act(type="message", text="Do you ship to Canada?")
    asked = Message.objects.get(text="Do you ship to Canada?")
    reply = message_send(conversation=asked.conversation, text="Yes, we do!")
    reply.refresh_from_db()
    page = act(type="message", text="Great, and to Mexico?", reply_to=reply.provider_message_id)
    quoting = Message.objects.get(text="Great, and to Mexico?")
    assert quoting.reply_to == reply and quoting.quoted_text == "Yes, we do!" and '<div class="quote">Yes, we do!</div>' in page
    act(type="reaction", target=reply.provider_message_id, emoji="❤️")
    reaction = MessageReaction.objects.get()
    assert (reaction.message, reaction.emoji, reaction.actor_key) == (reply, "❤️", f"c{asked.conversation.contact_id}")
    act(type="edit", target=asked.provider_message_id, text="Do you ship to Canada and the US?")
    asked.refresh_from_db()
    assert asked.text == "Do you ship to Canada and the US?" and asked.edits[0]["text"] == "Do you ship to Canada?"
    assert "Only a message typed on this phone" in act(type="edit", target=reply.provider_message_id, text="forged")
    act(type="delete", target=quoting.provider_message_id)
    quoting.refresh_from_db()
    assert quoting.deleted_at is not None
    page = act(type="from_me", text="Typed on the shop's phone")
    typed = Message.objects.get(text="Typed on the shop's phone")
    assert typed.via_device and typed.direction == "outbound" and "typed on Sales's phone" in page
    assert "Type a message." in act(type="message", text="  ")
    assert "That message is not in this chat." in act(type="reaction", target="someone-elses", emoji="👍")


def test_the_sandbox_phone_shows_the_accounts_reactions_and_read_ticks(admin_client, sandbox_account):
    url, phone = f"/sandbox/{sandbox_account.pk}/send/", "+14155550177"
    admin_client.post(url, {"phone": phone, "type": "message", "text": "Anyone there?"})
    asked = Message.objects.get()
    thread = lambda: admin_client.get(f"/sandbox/{sandbox_account.pk}/thread/", {"phone": phone}).content.decode()  # noqa: E731
    assert "✓✓ read" not in thread()
    admin_client.get(f"/inbox/{asked.conversation_id}/")  # the agent opens it: read receipt to the sandbox
    assert "✓✓ read" in thread()
    admin_client.post(f"/inbox/messages/{asked.pk}/react/", {"emoji": "👍"})
    assert '👍 <span class="who">Sales</span>' in thread()
    assert live_events("conversation.read_receipt")[0]["topics"] == [f"sandbox:{sandbox_account.pk}"]
