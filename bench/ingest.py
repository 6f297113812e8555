"""Inbound ingest on PostgreSQL with the worker running (prints figures; no pass/fail).

N Twilio webhooks signed with the real algorithm are posted over HTTP by C concurrent
clients to the ASGI server; it prints the ack latency (p50/p99), the processed throughput
(messages/s with contact + tag + conversation + message [+ outbox] all written), the
throughput of a trivial view (/livez) on the same server in the same run, before and after
(the framework's floor; its mean is what the ratios divide by), and the worker's memory (RSS of
the qcluster process tree) at start and end. Targets (issue 20): ack >= 50% of the floor in the
closed loop of 50 (p99 < 100 ms); processed >= 40% of the floor (>= 25% with --ghl); worker
memory flat (+< 10%) over 100k messages; a 10,000 backlog filed in under a minute.

    .venv/bin/python -m bench.ingest [--messages 5000] [--concurrency 50] [--redis] [--ghl] [--backlog 10000] [--durable]

--ghl installs the GHL app (OAuth through the web process) against the loopback GHL stand-in
first, so every filed message also writes its GHL outbox rows in the same transaction and the
worker drains them to the stand-in (at GHL's rate limit) while the benchmark runs.

--backlog N adds a last phase: the worker is stopped, N webhooks are acknowledged (an outage's
backlog: stored, not filed), the worker is started again, and the time until all N are filed is
printed (from its start, including its boot).
"""
import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

import psycopg
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402
from tests.servers import Postgres, Product, Redis, login_cookie  # noqa: E402
from tests.standins.ghl_standin import GhlStandIn  # noqa: E402

TOKEN = "bench-auth-token"
SID = "AC" + "b" * 32
SETUP = f"""
from accounts.models import Location
from accounts.services import account_create, account_set_status
loc = Location.objects.create(name="Bench", slug="bench")
a = account_create(location=loc, kind="twilio", backend="twilio", name="bench", phone_number="+14155550199",
                   credentials={{"account_sid": "{SID}", "auth_token": "{TOKEN}"}})
account_set_status(account=a, status="connected", reason="bench")
from django.contrib.auth import get_user_model
from accounts.models import Membership
boss = get_user_model().objects.create_user("boss", password="bench-password-1")
Membership.objects.create(user=boss, location=loc, role="admin")
print("ACCOUNT", a.pk)
"""


def install_ghl(base: str, ghl: GhlStandIn) -> None:
    """The admin installs the GHL app: /ghl/oauth/start, GHL's consent, /ghl/oauth/callback."""
    cookie = login_cookie(base, "boss", "bench-password-1")
    with httpx.Client(base_url=base, headers={"Cookie": cookie}, follow_redirects=False, timeout=10) as browser:
        start = browser.get("/ghl/oauth/start")
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        done = browser.get("/ghl/oauth/callback", params={"code": ghl.issue_code("ghl-bench"), "state": state})
        assert done.status_code == 302, done.text[:300]


def _tree(root_pid: int) -> list[int]:
    """A process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    found, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU time (user + system) used so far by a process tree's live processes."""
    ticks = 0
    for pid in _tree(root_pid):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_kb(root_pid: int) -> int:
    """RSS of a process and all its descendants, from /proc."""
    total = 0
    for pid in _tree(root_pid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--redis", action="store_true", help="Redis as broker and channel layer")
    parser.add_argument("--rate", type=float, default=100.0, help="open-loop phase: webhooks per second")
    parser.add_argument("--paced", type=int, default=2000, help="open-loop phase: how many webhooks")
    parser.add_argument("--ghl", action="store_true", help="GHL app installed (stand-in): outbox rows written and drained")
    parser.add_argument("--durable", action="store_true", help="PostgreSQL with fsync on, as in production (each commit waits for its WAL flush)")
    parser.add_argument("--backlog", type=int, default=0, help="last phase: webhooks stored while the worker is down, then filed")
    args = parser.parse_args()
    pg = redis = product = ghl = None
    try:
        pg = Postgres(durable=args.durable)
        redis = Redis() if args.redis else None
        extra = {}
        if args.ghl:
            ghl = GhlStandIn()
            extra = dict(GHL_API_BASE_URL=ghl.url, GHL_AUTHORIZE_URL=ghl.url + "/oauth/chooselocation", GHL_CLIENT_ID=ghl.client_id,
                         GHL_CLIENT_SECRET=ghl.client_secret, GHL_CONVERSATION_PROVIDER_ID="prov-bench")
        product = Product(database_url=pg.url, redis_url=redis.url if redis else "", Q_WORKERS="2", LOG_LEVEL="WARNING", **extra)
        product.manage("migrate", "--no-input", "-v0")
        account_id = next(l for l in product.shell(SETUP).splitlines() if l.startswith("ACCOUNT")).split()[1]
        base = product.start_web("web")
        product.env["PUBLIC_BASE_URL"] = base  # not needed by the server; signatures use its URL below
        if ghl:
            time.sleep(2)
            install_ghl(base, ghl)
        product.start_worker("worker")
        time.sleep(3)
        worker_pid = product.procs["worker"].pid
        path = f"/webhooks/twilio/{account_id}/"
        url = "http://127.0.0.1:8000" + path  # PUBLIC_BASE_URL the server validates against
        validator = RequestValidator(TOKEN)

        def webhook(i):
            person = i % (args.messages // 5 + 1)  # each person writes ~5 times, always under one name
            params = {"MessageSid": f"SM{i:032x}", "AccountSid": SID, "From": f"+1415555{person:04d}"[:12],
                      "To": "+14155550199", "Body": f"message {i}", "NumMedia": "0", "ProfileName": f"Person {person}"}
            return loadgen.build("POST", base + path, body=urlencode(params).encode(), headers={
                "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": validator.compute_signature(url, params)})

        postmaster = int((pg.dir / "data" / "postmaster.pid").read_text().split()[0])
        roots = {"web": product.procs["web"].pid, "PostgreSQL": postmaster, "worker": worker_pid}

        def cpu() -> dict:
            used = {name: tree_cpu_seconds(pid) for name, pid in roots.items()}
            used["load generator"] = time.process_time()
            return used

        def per_request(before: dict, after: dict, requests: int) -> str:
            return ", ".join(f"{name} {(after[name] - before[name]) / requests * 1000:.2f}" for name in before)

        livez = [loadgen.build("GET", base + "/livez")] * 3300
        asyncio.run(loadgen.closed_loop(base, livez[:300], args.concurrency))  # warm-up
        cpu_start = cpu()
        floor_lat, floor_time = asyncio.run(loadgen.closed_loop(base, livez[300:], args.concurrency))
        floor_cpu = per_request(cpu_start, cpu(), 3000)
        floor_before = 3000 / floor_time
        hooks = [webhook(i) for i in range(args.messages)]
        paced_hooks = [webhook(args.messages + i) for i in range(args.paced)]
        rss_start = tree_rss_kb(worker_pid)
        started = time.perf_counter()
        cpu_start = cpu()
        ack_lat, ack_time = asyncio.run(loadgen.closed_loop(base, hooks, args.concurrency))
        ack_cpu = per_request(cpu_start, cpu(), args.messages)
        total = args.messages + args.paced
        with psycopg.connect(pg.url, autocommit=True) as conn:
            def done_count():
                return conn.execute("SELECT count(*) FROM conversations_inboundevent WHERE status = 'done'").fetchone()[0]

            deadline = time.monotonic() + 3600
            while done_count() < args.messages and time.monotonic() < deadline:
                time.sleep(0.1)
            processed_time = time.perf_counter() - started
            done = done_count()
            paced_lat = asyncio.run(loadgen.open_loop(base, paced_hooks, args.rate, args.concurrency))
            while done_count() < total and time.monotonic() < deadline:
                time.sleep(0.2)
            # the floor again, now that the worker is idle again: this machine's speed drifts
            # between runs and within one, so each ratio is against the mean of both
            floor_lat_after, floor_time = asyncio.run(loadgen.closed_loop(base, livez[300:], args.concurrency))
            floor_after = 3000 / floor_time
            floor = (floor_before + floor_after) / 2
            messages, distinct, contacts, tagged, outbox = conn.execute(
                "SELECT (SELECT count(*) FROM conversations_message),"
                " (SELECT count(DISTINCT provider_message_id) FROM conversations_message),"
                " (SELECT count(*) FROM contacts_contact),"
                " (SELECT count(*) FROM contacts_contacttag),"
                " (SELECT count(*) FROM ghl_outboxitem)").fetchone()
        rss_end = tree_rss_kb(worker_pid)
        backlog_line = ""
        if args.backlog:
            product.kill("worker", signal.SIGTERM)
            first = total
            backlog = [webhook(first + i) for i in range(args.backlog)]
            backlog_lat, backlog_ack_time = asyncio.run(loadgen.closed_loop(base, backlog, args.concurrency))
            with psycopg.connect(pg.url, autocommit=True) as conn:
                def count(status):
                    return conn.execute("SELECT count(*) FROM conversations_inboundevent WHERE status = %s", [status]).fetchone()[0]

                waiting = count("pending")
                product.start_worker("worker")
                started_backlog = time.perf_counter()
                deadline = time.monotonic() + 3600
                while count("done") < total + args.backlog and time.monotonic() < deadline:
                    time.sleep(0.1)
                backlog_time = time.perf_counter() - started_backlog
            backlog_line = (f"webhook ack, worker down:   {args.backlog / backlog_ack_time:8.0f} req/s   p50 {pct(backlog_lat, 50):6.1f} ms   "
                            f"p99 {pct(backlog_lat, 99):6.1f} ms   (nothing filed meanwhile)\n"
                            f"backlog:                    {waiting} webhooks stored while the worker was down, filed in "
                            f"{backlog_time:.1f} s from its start = {args.backlog / backlog_time:.0f} msg/s (target < 60 s for 10,000)")
        processed = done / processed_time
        print(f"messages {args.messages}, concurrency {args.concurrency}, broker {'Redis' if redis else 'PostgreSQL (ORM)'}"
              f"{', durable commits (fsync on)' if args.durable else ''}"
              f"{', GHL app installed (stand-in)' if ghl else ''}")
        print(f"framework floor (/livez):   {floor:8.0f} req/s   (before {floor_before:.0f}, after {floor_after:.0f}; "
              f"p99 {pct(floor_lat, 99):.1f} / {pct(floor_lat_after, 99):.1f} ms)")
        print(f"webhook ack, closed loop:   {args.messages / ack_time:8.0f} req/s   = {args.messages / ack_time / floor:.0%} of the floor "
              f"(target >= 50%)   p50 {pct(ack_lat, 50):6.1f} ms   p99 {pct(ack_lat, 99):6.1f} ms")
        print(f"CPU ms per request:         /livez: {floor_cpu}")
        print(f"                            ack (closed loop, filing beside it): {ack_cpu}")
        print(f"webhook ack, open loop:     {args.rate:8.0f} req/s   p50 {pct(paced_lat, 50):6.1f} ms   p99 {pct(paced_lat, 99):6.1f} ms   ({args.paced} webhooks offered at a steady rate, up to {args.concurrency} in flight)")
        print(f"processed (end to end):     {processed:8.0f} msg/s   = {processed / floor:.0%} of the floor (target >= 40%)")
        print(f"worker RSS:                 {rss_start / 1024:8.1f} MB -> {rss_end / 1024:.1f} MB ({(rss_end - rss_start) / max(rss_start, 1):+.1%}; target < +10%)")
        if backlog_line:
            print(backlog_line)
        print(f"filed: {messages} messages ({distinct} distinct provider ids), {contacts} contacts, {tagged} contact tags, "
              f"{outbox} GHL outbox rows" + (f" ({len(ghl.messages)} messages in GHL so far, {ghl.throttled} x 429)" if ghl else ""))
    finally:
        if product:
            product.stop_all()
        if redis:
            redis.stop()
        if pg:
            pg.destroy()
        if ghl:
            ghl.close()


if __name__ == "__main__":
    main()
