"""Shared by the REST API and webhook tests (imported with `from tests.test_api_support import *`):
token personas, a signed sandbox inbound, the error-shape check, and loopback HTTP servers (a
webhook receiver; the Twilio REST stand-in lives in tests/standins/twilio_standin.py)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import api_token_create
from accounts.providers.sandbox import sign
from tests.standins.twilio_standin import TwilioStandIn

__all__ = [
    "token_client", "new_key", "agent_api", "admin_member_api", "other_api", "receive", "assert_error",
    "LoopbackServer", "receiver", "TwilioStandIn", "twilio_standin",
]


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def new_key(location, *, user=None, name="t") -> str:
    """A new API key of the location (only its hash is stored)."""
    return api_token_create(location=location, user=user, name=name)[1]


@pytest.fixture
def agent_api(location, agent_user):
    """A token scoped to an agent member."""
    return token_client(new_key(location, user=agent_user, name="agent"))


@pytest.fixture
def admin_member_api(location, admin_user):
    """A token scoped to an admin member: sees the whole location."""
    return token_client(new_key(location, user=admin_user, name="admin"))


@pytest.fixture
def other_api(other_location):
    """An admin token of another location: must never see ours."""
    return token_client(new_key(other_location, name="other"))


def receive(account, *, phone="+14155550123", text="hello", name="Ada", pid=None):
    """A signed sandbox inbound message, filed at once (tasks run inline in tests)."""
    receive.n = getattr(receive, "n", 0) + 1
    body = json.dumps({"id": pid or f"in-{receive.n}", "from": phone, "name": name, "text": text}).encode()
    response = Client().post(f"/webhooks/sandbox/{account.pk}/", data=body, content_type="application/json",
                             HTTP_X_SANDBOX_SIGNATURE=sign(account.webhook_secret, body))
    assert response.status_code == 200, response.content
    return response


def assert_error(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    """The one error shape: {"detail": str, "code": str, "errors"?: {field: [...]}}."""
    assert response.status_code == status, (response.status_code, getattr(response, "data", response.content))
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str)
    if code:
        assert body["code"] == code, body
    if field:
        assert field in body["errors"], body
    return body


# --- loopback servers --------------------------------------------------------------------------
class LoopbackServer:
    """An HTTP server on 127.0.0.1 in a thread; `handle(method, path, headers, body)` answers
    (status, json-able body) and every request is recorded."""

    def __init__(self):
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = {"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": body}
                server.requests.append(record)
                status, payload = server.handle(record)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, record) -> tuple[int, object]:
        return 200, {"ok": True}

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Receiver(LoopbackServer):
    """A webhook receiver answering the queued statuses (then 200)."""

    def __init__(self):
        super().__init__()
        self.statuses: list[int] = []

    def handle(self, record):
        status = self.statuses.pop(0) if self.statuses else 200
        return status, {"received": True} if status < 300 else {"error": "try later"}


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def twilio_standin(settings):
    """Twilio's REST API on loopback (tests/standins/twilio_standin.py) with the number +14155550199."""
    with TwilioStandIn(account_sid="AC" + "a" * 32, auth_token="api-test-auth-token") as server:
        server.add_number("+14155550199")
        settings.TWILIO_API_BASE_URL, settings.TWILIO_MESSAGING_BASE_URL = server.url, server.messaging_url
        yield server
