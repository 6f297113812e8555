"""Shared by the REST API and webhook tests (imported with `from tests.test_api_support import *`):
token personas, a signed sandbox inbound, the error-shape check, and loopback HTTP servers (a
webhook receiver and a Twilio REST stand-in)."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.providers.sandbox import sign

__all__ = [
    "token_client", "agent_api", "admin_member_api", "other_api", "receive", "assert_error",
    "LoopbackServer", "receiver", "TwilioStandIn", "twilio_standin",
]


def token_client(token: ApiToken) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def agent_api(location, agent_user):
    """A token scoped to an agent member."""
    return token_client(ApiToken.objects.create(location=location, user=agent_user, name="agent"))


@pytest.fixture
def admin_member_api(location, admin_user):
    """A token scoped to an admin member: sees the whole location."""
    return token_client(ApiToken.objects.create(location=location, user=admin_user, name="admin"))


@pytest.fixture
def other_api(other_location):
    """An admin token of another location: must never see ours."""
    return token_client(ApiToken.objects.create(location=other_location, name="other"))


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


class TwilioStandIn(LoopbackServer):
    """Twilio's REST API as the SDK uses it: fetch the account, create a message."""

    def __init__(self, account_sid: str, auth_token: str):
        super().__init__()
        self.account_sid, self.auth_token = account_sid, auth_token
        self.sent: list[dict] = []

    def handle(self, record):
        import base64
        from urllib.parse import parse_qs

        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if record["headers"].get("authorization") != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        base = f"/2010-04-01/Accounts/{self.account_sid}"
        if record["method"] == "GET" and record["path"] == base + ".json":
            return 200, {"sid": self.account_sid, "status": "active", "friendly_name": "stand-in"}
        if record["method"] == "POST" and record["path"] == base + "/Messages.json":
            form = {k: v[0] for k, v in parse_qs(record["body"].decode()).items()}
            sid = f"SM{len(self.sent) + 1:032x}"
            self.sent.append({"sid": sid, **form})
            return 201, {"sid": sid, "status": "queued", "to": form.get("To"), "from": form.get("From"),
                         "body": form.get("Body"), "account_sid": self.account_sid}
        return 404, {"code": 20404, "message": "Not found", "status": 404}


@pytest.fixture
def twilio_standin(settings):
    server = TwilioStandIn("AC" + "a" * 32, "api-test-auth-token")
    settings.TWILIO_API_BASE_URL = server.url
    yield server
    server.stop()
