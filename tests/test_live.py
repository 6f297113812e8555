"""Live events over Channels, through the same database relay the embedded mode uses."""
import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.services import account_create, account_set_status
from whatsnap.asgi import application


def _session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _connect(user):
    cookie = await sync_to_async(_session_cookie)(user)
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=[(b"cookie", cookie), (b"origin", b"http://testserver")])
    connected, _ = await communicator.connect()
    return communicator, connected


async def test_status_change_reaches_open_page(admin_user, location):
    account = await sync_to_async(account_create)(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    communicator, connected = await _connect(admin_user)
    assert connected
    await asyncio.sleep(0.4)  # let the relay take its starting point
    await sync_to_async(account_set_status)(account=account, status="connected", phone="+14155550100", reason="linked")
    event = await communicator.receive_json_from(timeout=5)
    assert event["event"] == "account.status"
    assert f"account:{account.pk}" in event["topics"] and event["data"]["status"] == "connected"
    await communicator.disconnect()


async def test_other_location_hears_nothing(outsider, location):
    account = await sync_to_async(account_create)(location=location, kind="whatsapp", backend="sandbox", name="Sales")
    communicator, connected = await _connect(outsider)
    assert connected
    await asyncio.sleep(0.4)
    await sync_to_async(account_set_status)(account=account, status="connected", reason="linked")
    assert await communicator.receive_nothing(timeout=1.0)
    await communicator.disconnect()


async def test_anonymous_socket_refused(db):
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=[(b"origin", b"http://testserver")])
    connected, _ = await communicator.connect()
    assert not connected


async def _events(communicator, count: int) -> list[dict]:
    events = []
    for _ in range(count):
        events.append(await communicator.receive_json_from(timeout=5))
    return events


async def test_inbox_hears_messages_statuses_and_assignments(admin_user, agent_user, location, sandbox_account):
    from datetime import datetime, timezone as dt_tz

    from accounts.providers.base import InboundMessage
    from conversations.actions import conversation_assign
    from conversations.models import Conversation
    from conversations.services import message_send, webhook_events_record

    communicator, connected = await _connect(agent_user)
    assert connected
    await asyncio.sleep(0.4)
    await sync_to_async(webhook_events_record)(account=sandbox_account, events=[
        InboundMessage(provider_id="live-1", from_phone="+14155550123", name="Ada", text="hello", at=datetime.now(dt_tz.utc))])
    conversation = await sync_to_async(Conversation.objects.get)()
    received = []
    while not any(e["event"] == "message.received" for e in received):
        received += await _events(communicator, 1)
    event = next(e for e in received if e["event"] == "message.received")
    assert "inbox" in event["topics"] and f"conversation:{conversation.pk}" in event["topics"]

    await sync_to_async(conversation_assign)(conversation=conversation, assignee=agent_user, actor=admin_user)
    seen = []
    while not any(e["event"] == "conversation.assigned" for e in seen):
        seen += await _events(communicator, 1)
    assert next(e for e in seen if e["event"] == "conversation.assigned")["data"]["assignee"] == agent_user.pk

    await sync_to_async(message_send)(conversation=conversation, text="hi Ada", author=admin_user)  # sandbox delivers at once
    statuses = []
    while "delivered" not in [e["data"].get("status") for e in statuses if e["event"] == "message.status"]:
        statuses += await _events(communicator, 1)
    assert all(f"conversation:{conversation.pk}" in e["topics"] for e in statuses if e["event"] == "message.status")
    await communicator.disconnect()
