from datetime import datetime, timezone as dt_tz

import pytest
from django.utils import timezone

from accounts.models import AccountEvent
from accounts.providers.base import InboundMessage
from accounts.services import account_connect, account_create
from contacts.models import Contact, Tag
from conversations.actions import conversation_assign, conversation_set_status, conversations_wake_snoozed, note_add
from conversations.models import Conversation, ConversationEvent, Message
from conversations.services import message_send, webhook_events_record
from whatsnap.errors import ApplicationError


def write_in(account, pid, phone="+14155550123", name="Ada", text="hello"):
    webhook_events_record(account=account, events=[
        InboundMessage(provider_id=pid, from_phone=phone, name=name, text=text, at=datetime.now(dt_tz.utc))
    ])
    return Conversation.objects.get(account=account, contact__phone=phone)


def test_inbox_list_filters(admin_client, admin_user, sandbox_account):
    a = write_in(sandbox_account, "1", phone="+14155550123", name="Ada", text="order 66")
    write_in(sandbox_account, "2", phone="+14155550124", name="Bob", text="hi")
    conversation_assign(conversation=a, assignee=admin_user)
    html = lambda **q: admin_client.get("/inbox/", q).content.decode()
    assert "Ada" in html(view="mine") and "Bob" not in html(view="mine")
    assert "Bob" in html(view="unassigned") and "Ada" not in html(view="unassigned")
    assert "Ada" in html(q="order 66") and "Bob" not in html(q="order 66")
    assert "Bob" in html(q="0124") and "Ada" not in html(q="0124")
    tag = sandbox_account.tag
    assert "Ada" in html(tag=tag.pk) and "Bob" in html(tag=tag.pk)
    conversation_set_status(conversation=a, status="resolved")
    assert "Ada" not in html(status="open") and "Ada" in html(status="resolved")


def test_list_and_thread_run_constant_queries(admin_client, sandbox_account, django_assert_max_num_queries):
    conversation = write_in(sandbox_account, "first")
    with django_assert_max_num_queries(20) as small_list:
        admin_client.get("/inbox/")
    # opening also queues the contact's read receipt (the task runs inline in the tests); issue 19
    # added the tabs' unread counts, the waiting queue and the contact's custom fields (one query each)
    with django_assert_max_num_queries(34) as small_thread:
        admin_client.get(f"/inbox/{conversation.pk}/")
    for i in range(25):
        write_in(sandbox_account, f"m{i}", phone=f"+1415555{1000 + i}", text=f"text {i}")
        write_in(sandbox_account, f"n{i}")
    with django_assert_max_num_queries(len(small_list.captured_queries)):
        admin_client.get("/inbox/")
    with django_assert_max_num_queries(len(small_thread.captured_queries)):
        admin_client.get(f"/inbox/{conversation.pk}/")


def test_partials_run_constant_queries(admin_client, sandbox_account, location, django_assert_max_num_queries):
    vip = Tag.objects.create(location=location, name="vip")
    conversation = write_in(sandbox_account, "first")
    urls = [f"/inbox/list/?view=all&tag={vip.pk}&q=text&current={conversation.pk}", "/inbox/list/?view=unassigned",
            f"/inbox/{conversation.pk}/thread/", f"/inbox/{conversation.pk}/panel/", f"/inbox/{conversation.pk}/header/"]
    small = {}
    for url in urls:
        with django_assert_max_num_queries(25) as captured:
            assert admin_client.get(url).status_code == 200
        small[url] = len(captured.captured_queries)
    for i in range(25):
        write_in(sandbox_account, f"m{i}", phone=f"+1415555{1000 + i}", text=f"text {i}")
        write_in(sandbox_account, f"n{i}", text=f"text again {i}")
        Contact.objects.get(phone=f"+1415555{1000 + i}").tags.add(vip)
    for url in urls:
        with django_assert_max_num_queries(small[url]):
            admin_client.get(url)


def test_long_thread_loads_older_messages_page_by_page(admin_client, sandbox_account, location):
    from datetime import timedelta

    conversation = write_in(sandbox_account, "0", text="message 0")
    base = timezone.now() - timedelta(hours=3)
    Message.objects.bulk_create([
        Message(location=location, conversation=conversation, account=sandbox_account, direction="inbound",
                text=f"message {i}", status="delivered", provider_message_id=f"bulk{i}", sent_at=base + timedelta(seconds=i))
        for i in range(1, 130)])
    Message.objects.filter(provider_message_id="0").update(sent_at=base)
    page = admin_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "message 129" in page and "message 30<" in page and "message 29<" not in page  # newest 100
    cursor = Message.objects.get(text="message 30").pk
    assert f"before={cursor}" in page and "Load older messages" in page
    older = admin_client.get(f"/inbox/{conversation.pk}/thread/?before={cursor}").content.decode()
    assert "message 0<" in older and "message 29<" in older and "message 30<" not in older
    assert "Load older messages" not in older  # the start of the thread
    assert older.index("message 0<") < older.index("message 29<")


def test_open_conversation_header_and_list_follow_live_changes(admin_client, sandbox_account):
    conversation = write_in(sandbox_account, "1")
    conversation_set_status(conversation=conversation, status="resolved")
    header = admin_client.get(f"/inbox/{conversation.pk}/header/").content.decode()
    assert "Reopen" in header and 'data-live="conversation:' in header
    listing = admin_client.get(f"/inbox/list/?view=all&current={conversation.pk}").content.decode()
    assert 'class="conv active"' in listing and f"current={conversation.pk}" in listing
    write_in(sandbox_account, "2", text="while it is open")
    assert Conversation.objects.get().unread_count > 0
    admin_client.get(f"/inbox/{conversation.pk}/thread/")  # the live refresh of the open thread
    assert Conversation.objects.get().unread_count == 0


def test_opening_marks_read_and_mark_unread(admin_client, sandbox_account):
    conversation = write_in(sandbox_account, "1")
    assert Conversation.objects.get().unread_count == 1
    admin_client.get(f"/inbox/{conversation.pk}/")
    assert Conversation.objects.get().unread_count == 0
    admin_client.post(f"/inbox/{conversation.pk}/action/", {"action": "unread"})
    assert Conversation.objects.get().unread_count == 1


def test_reply_from_inbox_goes_out_through_account(admin_client, sandbox_account):
    conversation = write_in(sandbox_account, "1")
    response = admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "On its way", "mode": "reply"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    out = Message.objects.get(direction="outbound")
    assert out.account == sandbox_account and out.status == "delivered" and out.text == "On its way"
    assert "On its way" in response.content.decode()


def test_signature_is_appended(sandbox_account):
    sandbox_account.signature = "— Acme Sales"
    sandbox_account.save()
    conversation = write_in(sandbox_account, "1")
    message = message_send(conversation=conversation, text="Hi")
    assert message.text == "Hi\n— Acme Sales"


def test_private_note_is_never_sent(admin_client, sandbox_account):
    conversation = write_in(sandbox_account, "1")
    admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "VIP, be nice", "mode": "note"})
    note = Message.objects.get(is_note=True)
    assert note.provider_message_id == "" and note.text == "VIP, be nice"
    from conversations.services import message_deliver

    assert message_deliver(message_id=note.pk) == "skipped"


def test_opted_out_contact_is_refused_with_reason(admin_client, sandbox_account):
    conversation = write_in(sandbox_account, "1")
    write_in(sandbox_account, "2", text="STOP")
    assert Contact.objects.get().opted_out
    response = admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "hello?"}, HTTP_HX_REQUEST="true")
    assert "opted out" in response.content.decode()
    assert not Message.objects.filter(direction="outbound").exists()
    write_in(sandbox_account, "3", text="START")
    assert not Contact.objects.get().opted_out


def test_agent_may_reply_through_another_account_of_the_contact(admin_client, location, sandbox_account):
    other = account_create(location=location, kind="imessage", backend="sandbox", name="mac", phone_number="+14155550112")
    account_connect(account=other)
    conversation = write_in(sandbox_account, "1")
    write_in(other, "2")
    html = admin_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "via mac" in html
    response = admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "from the Mac", "account": other.pk}, HTTP_HX_REQUEST="true")
    out = Message.objects.get(direction="outbound")
    assert out.account == other and out.conversation.account == other
    # the agent is taken to the thread that holds the reply
    assert response["HX-Redirect"] == f"/inbox/{out.conversation_id}/" != f"/inbox/{conversation.pk}/"
    assert "from the Mac" in admin_client.get(response["HX-Redirect"]).content.decode()


def test_reply_through_foreign_account_is_404(admin_client, sandbox_account, other_location):
    theirs = account_create(location=other_location, kind="imessage", backend="sandbox", name="x", phone_number="+14155550112")
    conversation = write_in(sandbox_account, "1")
    response = admin_client.post(f"/inbox/{conversation.pk}/reply/", {"text": "x", "account": theirs.pk})
    assert response.status_code == 404


def test_assign_unassign_history(admin_client, admin_user, agent_user, outsider, sandbox_account):
    conversation = write_in(sandbox_account, "1")
    admin_client.post(f"/inbox/{conversation.pk}/action/", {"action": "assign", "assignee": agent_user.pk})
    assert Conversation.objects.get().assignee == agent_user
    with pytest.raises(ApplicationError):
        conversation_assign(conversation=conversation, assignee=outsider)
    admin_client.post(f"/inbox/{conversation.pk}/action/", {"action": "assign", "assignee": ""})
    assert Conversation.objects.get().assignee is None
    kinds = list(ConversationEvent.objects.order_by("at", "id").values_list("kind", "to_value", "actor__username"))
    assert kinds == [("assigned", "teammate", "owner"), ("unassigned", "", "owner")]


def test_snooze_needs_future_and_wakes_up(sandbox_account):
    conversation = write_in(sandbox_account, "1")
    with pytest.raises(ApplicationError):
        conversation_set_status(conversation=conversation, status="snoozed", snooze_until=timezone.now())
    conversation_set_status(conversation=conversation, status="snoozed", snooze_until=timezone.now() + timezone.timedelta(hours=1))
    assert conversations_wake_snoozed() == 0
    Conversation.objects.update(snoozed_until=timezone.now() - timezone.timedelta(seconds=1))
    assert conversations_wake_snoozed() == 1
    assert Conversation.objects.get().status == "open"


def test_outsider_cannot_see_or_act(outsider_client, sandbox_account):
    conversation = write_in(sandbox_account, "1")
    assert outsider_client.get(f"/inbox/{conversation.pk}/").status_code == 404
    assert outsider_client.post(f"/inbox/{conversation.pk}/action/", {"action": "resolved"}).status_code == 404
    assert "Ada" not in outsider_client.get("/inbox/").content.decode()


def test_failed_send_shows_reason_and_retry_sends_once(admin_client, sandbox_account, monkeypatch):
    from accounts.providers.base import ProviderError
    from accounts.providers.sandbox import SandboxProvider

    conversation = write_in(sandbox_account, "1")
    calls = []

    def failing(self, account, **kw):
        calls.append(kw["idempotency_key"])
        raise ProviderError("phone offline", transient=False)

    monkeypatch.setattr(SandboxProvider, "send", failing)
    message = message_send(conversation=conversation, text="hi")
    message.refresh_from_db()
    assert (message.status, message.error) == ("failed", "phone offline")
    assert "phone offline" in admin_client.get(f"/inbox/{conversation.pk}/").content.decode()
    monkeypatch.undo()
    admin_client.post(f"/inbox/messages/{message.pk}/retry/")
    message.refresh_from_db()
    assert message.status == "delivered" and len(calls) == 1
    admin_client.post(f"/inbox/messages/{message.pk}/retry/")  # not failed any more: refused
    assert Message.objects.filter(direction="outbound").count() == 1


def test_backend_down_send_waits_with_backoff_and_goes_out_once(admin_client, sandbox_account, monkeypatch, pacing_clock):
    from accounts.providers.base import ProviderError, SendResult
    from accounts.providers.sandbox import SandboxProvider
    from conversations.pacing import account_drain

    conversation = write_in(sandbox_account, "1")
    calls = []
    down = {"on": True}

    def flaky(self, account, **kw):
        calls.append(kw["idempotency_key"])
        if down["on"]:
            raise ProviderError("gateway answered 503")
        return SendResult(provider_id=f"sbx-ok-{len(calls)}", status="delivered")

    monkeypatch.setattr(SandboxProvider, "send", flaky)
    message = message_send(conversation=conversation, text="hi")
    message.refresh_from_db()
    sandbox_account.refresh_from_db()
    assert message.status == "queued" and message.send_attempts == 1 and "503" in message.error
    # the account shows the failure as its status, with the reason; replies still queue
    assert sandbox_account.status == "error" and sandbox_account.last_error == "Sending failed: gateway answered 503"
    queued_meanwhile = message_send(conversation=conversation, text="still accepted")
    assert queued_meanwhile.status == "queued"
    page = admin_client.get(f"/inbox/{conversation.pk}/").content.decode()
    assert "attempt 1 of" in page and "retrying automatically" in page
    diagnostics = admin_client.get(f"/accounts/{sandbox_account.pk}/").content.decode()
    assert "gateway answered 503" in diagnostics and "1 message(s) waiting" in diagnostics
    wait = (sandbox_account.next_send_at - pacing_clock.now()).total_seconds()
    assert 14 < wait <= 15
    assert account_drain(account_id=sandbox_account.pk) == 0 and len(calls) == 1  # not before its time
    pacing_clock.sleep(16)
    account_drain(account_id=sandbox_account.pk)
    message.refresh_from_db()
    assert message.send_attempts == 2 and len(calls) == 2
    down["on"] = False
    pacing_clock.sleep(31)
    account_drain(account_id=sandbox_account.pk)
    message.refresh_from_db()
    assert message.status == "delivered" and message.provider_message_id == "sbx-ok-3"
    queued_meanwhile.refresh_from_db()
    assert queued_meanwhile.status == "delivered" and len(calls) == 4  # in order, after the first
    sandbox_account.refresh_from_db()
    assert sandbox_account.last_error == "" and sandbox_account.status == "connected"
    history = list(AccountEvent.objects.filter(account=sandbox_account).order_by("at", "id").values_list("to_status", "reason"))[-2:]
    assert history == [("error", "Sending failed: gateway answered 503"), ("connected", "sending works again")]
    # each message was handed over once successfully: no duplicate sends
    assert sorted(Message.objects.filter(direction="outbound").values_list("provider_message_id", flat=True)) == ["sbx-ok-3", "sbx-ok-4"]


def test_send_fails_after_the_last_attempt_and_ambiguous_errors_never_resend(sandbox_account, monkeypatch, pacing_clock):
    from accounts.providers.base import ProviderError
    from accounts.providers.sandbox import SandboxProvider
    from conversations.pacing import account_drain
    from conversations.services import MAX_SEND_ATTEMPTS

    conversation = write_in(sandbox_account, "1")
    calls = []

    def down(self, account, **kw):
        calls.append(1)
        raise ProviderError("gateway unreachable")

    monkeypatch.setattr(SandboxProvider, "send", down)
    message = message_send(conversation=conversation, text="hi")
    for _ in range(MAX_SEND_ATTEMPTS):
        pacing_clock.sleep(700)
        account_drain(account_id=sandbox_account.pk)
    message.refresh_from_db()
    assert message.status == "failed" and len(calls) == MAX_SEND_ATTEMPTS and "unreachable" in message.error

    def timed_out(self, account, **kw):
        calls.append(1)
        raise ProviderError("read timeout", ambiguous=True)

    monkeypatch.setattr(SandboxProvider, "send", timed_out)
    before = len(calls)
    other = message_send(conversation=conversation, text="again")
    other.refresh_from_db()
    assert other.status == "failed" and "may have been sent" in other.error and len(calls) == before + 1


def test_send_whose_worker_died_is_failed_by_the_sweeper_never_resent(admin_client, sandbox_account, monkeypatch):
    from accounts.providers.sandbox import SandboxProvider
    from conversations.services import STUCK_SENDING_SECONDS
    from conversations.tasks import sweep_pending

    conversation = write_in(sandbox_account, "1")
    calls = []
    monkeypatch.setattr(SandboxProvider, "send", lambda self, account, **kw: calls.append(kw) or (_ for _ in ()).throw(SystemExit))
    with pytest.raises(SystemExit):  # the worker dies in the middle of the send
        message_send(conversation=conversation, text="lost worker")
    message = Message.objects.get(direction="outbound")
    assert message.status == "sending" and len(calls) == 1
    sweep_pending()
    message.refresh_from_db()
    assert message.status == "sending"  # too recent: its worker may still be on it
    Message.objects.filter(pk=message.pk).update(status_changed_at=timezone.now() - timezone.timedelta(seconds=STUCK_SENDING_SECONDS + 1))
    sweep_pending()
    message.refresh_from_db()
    assert message.status == "failed" and "may have been sent" in message.error and len(calls) == 1
    monkeypatch.undo()
    admin_client.post(f"/inbox/messages/{message.pk}/retry/")  # the agent decides
    message.refresh_from_db()
    assert message.status == "delivered"


def test_withdrawn_messages_are_failed_told_and_never_retried(admin_client, sandbox_account, monkeypatch):
    from conversations.sending import WITHDRAWN, messages_withdraw, message_retry
    from whatsnap import events

    monkeypatch.setattr("conversations.sending.enqueue_account_drain", lambda *a, **k: None)  # they stay queued
    conversation = write_in(sandbox_account, "1")
    waiting, claimed, accepted = (message_send(conversation=conversation, text=t) for t in ("one", "two", "three"))
    Message.objects.filter(pk=claimed.pk).update(status="sending")  # a drainer claimed it first: it leaves
    Message.objects.filter(pk=accepted.pk).update(provider_message_id="BK1")  # the backend has it already
    with events.captured() as told:
        n = messages_withdraw(message_ids=[waiting.pk, claimed.pk, accepted.pk], reason="the broadcast “Sale” was cancelled.")
    assert n == 1
    waiting.refresh_from_db()
    assert waiting.status == "failed" and waiting.error == f"{WITHDRAWN}the broadcast “Sale” was cancelled."
    assert [(e.name, e["message"].pk, e["error"]) for e in told] == [("message.status_changed", waiting.pk, waiting.error)]
    assert Message.objects.get(pk=claimed.pk).status == "sending" and Message.objects.get(pk=accepted.pk).status == "queued"
    assert messages_withdraw(message_ids=[waiting.pk], reason="again") == 0  # failed already: untouched
    with pytest.raises(ApplicationError) as err:
        message_retry(message=waiting)
    assert err.value.code == "withdrawn" and "withdrawn" in err.value.message
    response = admin_client.post(f"/inbox/messages/{waiting.pk}/retry/", follow=True)
    assert "cannot be retried" in response.content.decode()
    assert Message.objects.get(pk=waiting.pk).status == "failed"
    # the thread: muted "Withdrawn — why", no Retry; an ordinary failure keeps its Retry
    Message.objects.filter(pk=accepted.pk).update(status="failed", provider_message_id="", error="phone offline")
    page = admin_client.get(f"/inbox/{conversation.pk}/").content.decode()
    bubble = page.split(f'id="msg-{waiting.pk}"')[1].split('class="bubble')[0]
    assert "Withdrawn — the broadcast “Sale” was cancelled." in bubble and "Retry" not in bubble and ">Failed<" not in bubble
    other = page.split(f'id="msg-{accepted.pk}"')[1].split('class="bubble')[0]
    assert "phone offline" in other and f"/inbox/messages/{accepted.pk}/retry/" in other


def test_api_refuses_to_retry_a_withdrawn_message(api_client, sandbox_account, monkeypatch):
    from conversations.sending import messages_withdraw

    monkeypatch.setattr("conversations.sending.enqueue_account_drain", lambda *a, **k: None)
    message = message_send(conversation=write_in(sandbox_account, "1"), text="hi")
    assert messages_withdraw(message_ids=[message.pk], reason="cancelled.") == 1
    response = api_client.post(f"/api/v1/messages/{message.pk}/retry/")
    assert response.status_code == 400 and response.json()["code"] == "withdrawn"
    assert Message.objects.get(pk=message.pk).status == "failed"
