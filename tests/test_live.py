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
