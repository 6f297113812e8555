"""Scale-out on real servers: PostgreSQL + Redis, two web processes, two workers."""
import asyncio
import json
import shutil
import signal
import threading
import time

import httpx
import psycopg
import pytest
import websockets

from accounts.providers.sandbox import sign
from tests.servers import Postgres, Product, Redis, login_cookie

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="bin/test installs redis-server"),
]

SETUP = """
from django.contrib.auth import get_user_model
from accounts.models import Location, Membership
from accounts.services import account_create, account_connect
loc = Location.objects.create(name="Scale", slug="scale")
user = get_user_model().objects.create_user("ops", password="ops-password-1")
Membership.objects.create(user=user, location=loc, role="admin")
a = account_create(location=loc, kind="android_sms", backend="sandbox", name="scale", phone_number="+14155550111")
account_connect(account=a)
a.refresh_from_db()
print("ACCOUNT", a.pk, a.webhook_secret)
"""
SWEEP = "from whatsnap.tasks import run_sweeps; print('SWEPT', run_sweeps())"


@pytest.fixture(scope="module")
def deployment():
    pg, redis = Postgres(), Redis()
    product = Product(database_url=pg.url, redis_url=redis.url, RETRY_PENDING_AFTER_SECONDS="2")
    try:
        product.manage("migrate", "--no-input", "-v0")
        _, account_id, secret = next(l for l in product.shell(SETUP).splitlines() if l.startswith("ACCOUNT")).split()
        web_a, web_b = product.start_web("web-a"), product.start_web("web-b")
        product.start_worker("worker-1")
        product.start_worker("worker-2")
        yield {"pg": pg, "redis": redis, "product": product, "a": web_a, "b": web_b, "account": account_id, "secret": secret}
    finally:
        product.stop_all()
        redis.stop()
        pg.destroy()


def post(d, base, pid, phone="+14155550123", text="hi"):
    body = json.dumps({"id": pid, "from": phone, "text": text}).encode()
    return httpx.post(f"{base}/webhooks/sandbox/{d['account']}/", content=body, timeout=10,
                      headers={"Content-Type": "application/json", "X-Sandbox-Signature": sign(d["secret"], body)})


def counts(d):
    with psycopg.connect(d["pg"].url, autocommit=True) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM conversations_message WHERE direction='inbound'),"
            " (SELECT count(DISTINCT provider_message_id) FROM conversations_message WHERE direction='inbound'),"
            " (SELECT count(*) FROM conversations_inboundevent WHERE status='done'),"
            " (SELECT count(*) FROM conversations_inboundevent)"
        ).fetchone()


def wait_for(predicate, timeout=60, sweep=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if sweep:
            sweep()
        time.sleep(0.5)
    return predicate()


def test_event_from_web_b_reaches_socket_on_web_a(deployment):
    d = deployment
    cookie = login_cookie(d["a"], "ops", "ops-password-1")

    async def listen():
        url = d["a"].replace("http", "ws") + "/ws/live/"
        async with websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": d["a"]}) as ws:
            await asyncio.sleep(0.3)
            assert (await asyncio.to_thread(post, d, d["b"], "cross-1")).status_code == 200
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
                if event["event"] == "message.received":
                    return event

    event = asyncio.run(listen())
    assert "inbox" in event["topics"]


def test_an_open_socket_outlives_a_redis_stall_longer_than_its_blocking_read(deployment):
    """A socket waits for its events in a blocking Redis read of channels_redis's brpop_timeout
    (5 s). On a busy machine the reply to it comes late; with redis-py 8's default read timeout
    (also 5 s) the consumer died of TimeoutError and the page's socket dropped without a close
    frame. Redis frozen for 7 s here is that late reply, made certain."""
    d = deployment
    cookie = login_cookie(d["a"], "ops", "ops-password-1")

    async def listen():
        url = d["a"].replace("http", "ws") + "/ws/live/"
        async with websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": d["a"]}) as ws:
            await asyncio.sleep(0.5)  # the consumer is now blocked reading from Redis
            d["redis"].proc.send_signal(signal.SIGSTOP)
            try:
                await asyncio.sleep(7)
            finally:
                d["redis"].proc.send_signal(signal.SIGCONT)
            assert (await asyncio.to_thread(post, d, d["b"], "after-stall-1", "+14155550152")).status_code == 200
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
                if event["event"] == "message.received":
                    return event

    assert "inbox" in asyncio.run(listen())["topics"]


def test_killing_a_worker_mid_batch_loses_and_duplicates_nothing(deployment):
    d = deployment
    before = counts(d)[0]
    n = 300

    async def burst():
        async with httpx.AsyncClient(timeout=10) as client:
            sem = asyncio.Semaphore(20)

            async def one(i):
                body = json.dumps({"id": f"kill-{i}", "from": f"+1415555{3000 + i % 40}", "text": f"m{i}"}).encode()
                async with sem:
                    r = await client.post(f"{d['b']}/webhooks/sandbox/{d['account']}/", content=body, headers={
                        "Content-Type": "application/json", "X-Sandbox-Signature": sign(d["secret"], body)})
                    assert r.status_code == 200

            await asyncio.gather(*(one(i) for i in range(n)))

    sender = threading.Thread(target=lambda: asyncio.run(burst()))
    sender.start()
    # kill as soon as the workers are busy with the batch: whatever worker-1 had taken from
    # Redis (and any transaction it had open) is gone with it
    assert wait_for(lambda: counts(d)[0] - before >= 5, timeout=30)
    d["product"].kill("worker-1")
    processed_at_kill = counts(d)[0] - before
    sender.join()
    assert processed_at_kill < n, "the batch was already done: the kill proved nothing"
    sweep = lambda: d["product"].shell(SWEEP)
    assert wait_for(lambda: counts(d)[0] - before == n, timeout=90, sweep=sweep), \
        f"(messages, distinct, events done, events) = {counts(d)}, {before} messages before; logs:\n{d['product'].logs()}"
    total, distinct, done, events = counts(d)
    assert total == distinct and done == events  # exactly once, nothing pending
    d["product"].start_worker("worker-1")


def test_redis_down_webhooks_still_accepted_then_processed(deployment):
    d = deployment
    d["redis"].stop()
    try:
        response = post(d, d["a"], "redis-down-1", phone="+14155550150")
        assert response.status_code == 200  # the ack path needs only the database
        assert httpx.get(d["a"] + "/healthz", timeout=10).status_code == 503
    finally:
        d["redis"].start()
    sweep = lambda: d["product"].shell(SWEEP)
    assert wait_for(lambda: _has_message(d, "redis-down-1"), timeout=60, sweep=sweep)
    assert wait_for(lambda: httpx.get(d["a"] + "/healthz", timeout=10).status_code == 200, timeout=20)


def test_postgres_restart_connections_recover(deployment):
    d = deployment
    d["pg"].stop()
    d["pg"].start()
    status = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status = post(d, d["b"], "after-restart-1", phone="+14155550151").status_code
        except httpx.HTTPError:
            status = None
        if status == 200:
            break
        time.sleep(0.5)
    assert status == 200
    sweep = lambda: d["product"].shell(SWEEP)
    assert wait_for(lambda: _has_message(d, "after-restart-1"), timeout=60, sweep=sweep)


def _has_message(d, pid) -> bool:
    with psycopg.connect(d["pg"].url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM conversations_message WHERE provider_message_id = %s", [pid]).fetchone()[0] == 1
