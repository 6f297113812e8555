"""GoHighLevel sync on real servers: the ASGI web process and a qcluster worker on PostgreSQL,
the GHL stand-in on loopback. Install through the real OAuth redirect, inbound messages reach
GHL from the worker, an outage is waited out by the worker's own schedule (no test help), and
a reply typed in GHL leaves through the sandbox account with its status back in GHL."""
import json
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest

from accounts.providers.sandbox import sign
from tests.servers import Postgres, Product, login_cookie
from tests.standins.ghl_standin import GhlStandIn

pytestmark = pytest.mark.servers

SETUP = """
from django.contrib.auth import get_user_model
from accounts.models import Location, Membership
from accounts.services import account_create, account_connect
loc = Location.objects.create(name="Shop", slug="shop")
user = get_user_model().objects.create_user("boss", password="boss-password-1")
Membership.objects.create(user=user, location=loc, role="admin")
a = account_create(location=loc, kind="android_sms", backend="sandbox", name="sales", phone_number="+14155550111")
account_connect(account=a)
a.refresh_from_db()
print("ACCOUNT", a.pk, a.webhook_secret)
"""


@pytest.fixture(scope="module")
def stack():
    ghl = GhlStandIn()
    pg = Postgres()
    product = Product(database_url=pg.url, GHL_API_BASE_URL=ghl.url, GHL_AUTHORIZE_URL=ghl.url + "/oauth/chooselocation",
                      GHL_CLIENT_ID=ghl.client_id, GHL_CLIENT_SECRET=ghl.client_secret,
                      GHL_CONVERSATION_PROVIDER_ID="prov-1", GHL_WEBHOOK_PUBLIC_KEY=ghl.public_pem,
                      RETRY_PENDING_AFTER_SECONDS="2")
    try:
        product.manage("migrate", "--no-input", "-v0")
        _, account_id, secret = next(l for l in product.shell(SETUP).splitlines() if l.startswith("ACCOUNT")).split()
        web = product.start_web("web")
        product.start_worker("worker")
        yield {"ghl": ghl, "pg": pg, "product": product, "web": web, "account": account_id, "secret": secret}
    finally:
        product.stop_all()
        pg.destroy()
        ghl.close()


def inbound(s, pid, text, phone="+14155550123"):
    body = json.dumps({"id": pid, "from": phone, "name": "Ada", "text": text}).encode()
    response = httpx.post(f"{s['web']}/webhooks/sandbox/{s['account']}/", content=body, timeout=10,
                          headers={"Content-Type": "application/json", "X-Sandbox-Signature": sign(s["secret"], body)})
    assert response.status_code == 200


def wait_for(predicate, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return predicate()


def outbox(s):
    with psycopg.connect(s["pg"].url, autocommit=True) as conn:
        return dict(conn.execute("SELECT status, count(*) FROM ghl_outboxitem GROUP BY status").fetchall())


def test_install_inbound_outage_and_reply_across_processes(stack):
    s, ghl = stack, stack["ghl"]
    cookie = login_cookie(s["web"], "boss", "boss-password-1")
    with httpx.Client(base_url=s["web"], headers={"Cookie": cookie}, follow_redirects=False, timeout=10) as browser:
        start = browser.get("/ghl/oauth/start")
        assert start.status_code == 302 and start.headers["location"].startswith(ghl.url + "/oauth/chooselocation?")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        done = browser.get("/ghl/oauth/callback", params={"code": ghl.issue_code("ghl-loc-1"), "state": state})
        assert done.status_code == 302 and done.headers["location"] == "/ghl/"

    inbound(s, "m1", "first")
    assert wait_for(lambda: len(ghl.messages) == 1), outbox(s)
    (contact,) = ghl.contacts.values()
    assert contact["tags"] == ["whatsnap-account-sales"] and contact["name"] == "Ada"

    # GHL goes down: messages wait; the worker resumes on its own after recovery
    ghl.go_down(503)
    for n in range(2, 6):
        inbound(s, f"m{n}", f"message {n}")
    assert wait_for(lambda: outbox(s).get("pending", 0) == 4 and any(c.status == 503 for c in ghl.calls))
    ghl.recover()
    assert wait_for(lambda: outbox(s).get("pending", 0) == 0, timeout=120), outbox(s)
    texts = [m["message"] for m in ghl.messages.values()]
    assert texts == ["first", "message 2", "message 3", "message 4", "message 5"]
    assert len(ghl.contacts) == 1 and outbox(s).get("failed", 0) == 0

    # a reply typed in GHL leaves through the sandbox account; GHL hears it was delivered
    message_id = ghl.add_provider_message("ghl-loc-1", contact["id"], "Thanks, Ada")
    raw, headers = ghl.sign(ghl.provider_outbound(location_id="ghl-loc-1", contact_id=contact["id"], text="Thanks, Ada", message_id=message_id))
    response = httpx.post(f"{s['web']}/ghl/webhooks/provider/", content=raw, timeout=10,
                          headers={"Content-Type": "application/json", "X-GHL-Signature": headers["HTTP_X_GHL_SIGNATURE"]})
    assert response.status_code == 200 and response.json()["outcome"] == "queued"
    assert wait_for(lambda: ghl.messages[message_id]["status"] == "delivered")
    with psycopg.connect(s["pg"].url, autocommit=True) as conn:
        sent = conn.execute("SELECT text, status FROM conversations_message WHERE direction='outbound'").fetchall()
    assert sent == [("Thanks, Ada", "delivered")]
