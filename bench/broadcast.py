"""A broadcast to many contacts across several sandbox accounts, on PostgreSQL with the worker
running (prints figures; no pass/fail).

Seeds N contacts (each carrying a segment tag and one of the accounts' own tags, so "each
contact's own account" spreads them over the accounts), then composes and starts the broadcast
through the REST API and measures:

- time to queue: the API call that creates it and snapshots every recipient;
- sends/s achieved per account against its configured pace (send_per_minute, no jitter),
  from the first to the last message each account sent (target: within 5 %);
- worker memory (RSS of the qcluster process tree) over the run (target: flat);
- the inbox list (GET /inbox/?view=all, over HTTP from a logged-in admin) p50/p95 while it
  runs (target: p95 < 100 ms).

    .venv/bin/python -m bench.broadcast [--contacts 10000] [--accounts 3] [--pace 500] [--max-seconds 0] [--redis]

Everything listens on 127.0.0.1 (PostgreSQL, Redis, the web and worker processes); the sandbox
backend sends nowhere."""
import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import pct, tree_rss_kb  # noqa: E402
from tests.servers import Postgres, Product, Redis, login_cookie  # noqa: E402

SETUP = """
from accounts.models import Account, Location, Membership
from accounts.services import account_connect, account_create
from django.contrib.auth import get_user_model
loc = Location.objects.create(name="Bench", slug="bench", timezone="UTC")
boss = get_user_model().objects.create_user("boss", password="bench-password-1")
Membership.objects.create(user=boss, location=loc, role="admin")
for i in range({accounts}):
    a = account_create(location=loc, kind="android_sms", backend="sandbox", name=f"bench{{i}}", phone_number=f"+1415555090{{i}}")
    account_connect(account=a)
    Account.objects.filter(pk=a.pk).update(send_per_minute={pace}, send_jitter_seconds=0, broadcast_daily_cap=100000,
                                           broadcast_warmup=False)
    print("ACCOUNT", a.pk, a.tag.pk)
print("LOCATION", loc.pk)
"""

SEED = """
INSERT INTO contacts_tag (location_id, name, created_at) VALUES (%(loc)s, 'spring-sale', now()) RETURNING id;
"""


def seed(url: str, location_id: int, account_tags: list[int], contacts: int) -> int:
    with psycopg.connect(url, autocommit=True) as db:
        tag_id = db.execute(SEED, {"loc": location_id}).fetchone()[0]
        db.execute("""INSERT INTO contacts_contact (location_id, kind, phone, phone_is_e164, name, name_source, opted_out,
                      ghl_contact_id, whatsapp_lid, created_at, updated_at)
                      SELECT %(loc)s, 'person', '+1555' || lpad(i::text, 7, '0'), true, 'Person ' || i, 'platform',
                             i %% 100 = 0, '', '', now(), now() FROM generate_series(1, %(n)s) i""", {"loc": location_id, "n": contacts})
        db.execute("INSERT INTO contacts_contacttag (contact_id, tag_id, added_at) SELECT id, %(tag)s, now() FROM contacts_contact "
                   "WHERE location_id = %(loc)s", {"tag": tag_id, "loc": location_id})
        db.execute("INSERT INTO contacts_contacttag (contact_id, tag_id, added_at) SELECT id, (%(tags)s::int[])[1 + id %% %(k)s], now() "
                   "FROM contacts_contact WHERE location_id = %(loc)s", {"tags": account_tags, "k": len(account_tags), "loc": location_id})
        db.execute("ANALYZE")
    return tag_id


class Sampler(threading.Thread):
    """Every second: recipient counts by status, worker RSS; the inbox list timed in between."""

    def __init__(self, url: str, broadcast_id: int, worker_pid: int, base: str, cookie: str):
        super().__init__(daemon=True)
        self.url, self.broadcast_id, self.worker_pid, self.base, self.cookie = url, broadcast_id, worker_pid, base, cookie
        self.counts, self.rss, self.inbox = [], [], []
        self.stop = threading.Event()

    def run(self):
        with psycopg.connect(self.url, autocommit=True) as db, httpx.Client(base_url=self.base, headers={"Cookie": self.cookie}) as web:
            while not self.stop.is_set():
                rows = dict(db.execute("SELECT status, count(*) FROM broadcasts_broadcastrecipient WHERE broadcast_id = %s "
                                       "GROUP BY status", (self.broadcast_id,)).fetchall())
                self.counts.append((time.monotonic(), rows))
                self.rss.append(tree_rss_kb(self.worker_pid))
                for _ in range(4):
                    started = time.perf_counter()
                    assert web.get("/inbox/?view=all").status_code == 200
                    self.inbox.append(time.perf_counter() - started)
                    time.sleep(0.2)


def achieved_rates(url: str, broadcast_id: int) -> list[tuple[str, int, float]]:
    """Per account: messages sent, and sends/s from its first to its last send."""
    with psycopg.connect(url) as db:
        rows = db.execute("""SELECT a.name, count(*), extract(epoch FROM max(m.status_changed_at) - min(m.status_changed_at))
                             FROM broadcasts_broadcastrecipient r JOIN conversations_message m ON m.id = r.message_id
                             JOIN accounts_account a ON a.id = r.account_id
                             WHERE r.broadcast_id = %s AND m.status IN ('sent', 'delivered', 'read') GROUP BY a.name ORDER BY a.name""",
                          (broadcast_id,)).fetchall()
    return [(name, n, (n - 1) / float(seconds) if seconds else 0.0) for name, n, seconds in rows]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=3)
    parser.add_argument("--pace", type=int, default=500, help="send_per_minute of each account (1-600)")
    parser.add_argument("--max-seconds", type=int, default=0, help="cancel after this long (0: run to completion)")
    parser.add_argument("--redis", action="store_true", help="Redis as broker and channel layer")
    args = parser.parse_args()
    pg = redis = product = None
    try:
        pg = Postgres()
        redis = Redis() if args.redis else None
        # one worker process per account being drained at once, plus one for the feeder and the sweep
        product = Product(database_url=pg.url, redis_url=redis.url if redis else "", Q_WORKERS=str(args.accounts + 1),
                          LOG_LEVEL="WARNING")
        product.manage("migrate", "--no-input", "-v0")
        out = product.shell(SETUP.format(accounts=args.accounts, pace=args.pace)).splitlines()
        accounts = [line.split()[1:] for line in out if line.startswith("ACCOUNT")]
        location_id = int(next(line for line in out if line.startswith("LOCATION")).split()[1])
        started = time.monotonic()
        tag_id = seed(pg.url, location_id, [int(tag) for _, tag in accounts], args.contacts)
        print(f"seeded {args.contacts:,} contacts over {args.accounts} sandbox accounts at {args.pace}/min each "
              f"in {time.monotonic() - started:.1f} s (1 in 100 opted out)")
        key = product.manage("create_api_token", "Bench").strip().splitlines()[-1].strip()
        base = product.start_web("web")
        product.start_worker("worker")
        time.sleep(3)
        worker_pid = product.procs["worker"].pid
        cookie = login_cookie(base, "boss", "bench-password-1")
        api = httpx.Client(base_url=base, headers={"Authorization": f"Token {key}"}, timeout=300)

        started = time.monotonic()
        answer = api.post("/api/v1/broadcasts/", json={"name": "Spring sale", "text": "Hi {{first_name|there}}, 20% off this week.",
                                                       "tag_ids": [tag_id], "start": True})
        queued_in = time.monotonic() - started
        assert answer.status_code == 201, answer.text[:500]
        broadcast = answer.json()
        print(f"time to queue (create + snapshot of {broadcast['counts']['total']:,} recipients, through the API): {queued_in:.2f} s "
              f"({broadcast['counts']['skipped']} skipped as opted out)")
        sampler = Sampler(pg.url, broadcast["id"], worker_pid, base, cookie)
        sampler.start()
        expected = args.contacts - broadcast["counts"]["skipped"]
        deadline = time.monotonic() + (args.max_seconds or 10**9)
        while time.monotonic() < deadline:
            time.sleep(2)
            status = api.get(f"/api/v1/broadcasts/{broadcast['id']}/").json()
            if status["status"] in ("completed", "paused", "cancelled"):
                break
        run_seconds = time.monotonic() - started
        if status["status"] == "running":
            status = api.post(f"/api/v1/broadcasts/{broadcast['id']}/cancel/").json()
        sampler.stop.set()
        sampler.join(timeout=30)
        counts = status["counts"]
        done = counts["sent"] + counts["delivered"] + counts["read"]
        print(f"run: {run_seconds:.0f} s, status {status['status']}; sent {done:,} of {expected:,}, failed {counts['failed']}, "
              f"skipped {counts['skipped']}")
        target = args.pace / 60
        print(f"{'account':10} {'sent':>7} {'sends/s':>8} {'pace/s':>7} {'vs pace':>8}")
        for name, n, rate in achieved_rates(pg.url, broadcast["id"]):
            print(f"{name:10} {n:7,d} {rate:8.3f} {target:7.3f} {100 * (rate / target - 1):+7.1f}%")
        with psycopg.connect(pg.url) as db:
            sent, people = db.execute("SELECT count(*), count(DISTINCT c.contact_id) FROM conversations_message m "
                                      "JOIN conversations_conversation c ON c.id = m.conversation_id "
                                      "WHERE m.direction = 'outbound'").fetchone()
        print(f"outbound messages: {sent:,} to {people:,} different contacts ({sent - people} sent twice)")
        most_queued = max((rows.get("queued", 0) for _, rows in sampler.counts), default=0)
        print(f"most recipients in the accounts' queues at once: {most_queued} (window {args.accounts} x BROADCAST_QUEUE_WINDOW)")
        rss = sampler.rss
        if rss:
            settle = rss[min(len(rss) - 1, 10)]
            print(f"worker RSS: {rss[0] / 1024:.0f} MB at start, {settle / 1024:.0f} MB after 10 s, {rss[-1] / 1024:.0f} MB at end, "
                  f"max {max(rss) / 1024:.0f} MB ({100 * (rss[-1] / settle - 1):+.1f}% from 10 s to the end)")
        if sampler.inbox:
            print(f"inbox list while sending: {len(sampler.inbox)} requests, p50 {pct(sampler.inbox, 50):.1f} ms, "
                  f"p95 {pct(sampler.inbox, 95):.1f} ms, mean {statistics.mean(sampler.inbox) * 1000:.1f} ms")
    finally:
        if product:
            product.stop_all()
        if redis:
            redis.stop()
        if pg:
            pg.destroy()


if __name__ == "__main__":
    main()
