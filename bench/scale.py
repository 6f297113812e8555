"""Scale-out throughput on PostgreSQL + Redis (prints figures; no pass/fail).

For each layout (web processes x worker processes) it starts a fresh deployment on loopback,
posts N signed webhooks with C concurrent clients spread over the web processes, and times
until every message is filed (contact + tag + conversation + message written).

    .venv/bin/python -m bench.scale [--messages 3000] [--concurrency 40]
"""
import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accounts.providers.sandbox import sign  # noqa: E402
from bench import loadgen  # noqa: E402
from tests.servers import Postgres, Product, Redis  # noqa: E402

SETUP = """
from accounts.models import Location
from accounts.services import account_create, account_connect
loc = Location.objects.create(name="Scale", slug="scale")
a = account_create(location=loc, kind="android_sms", backend="sandbox", name="scale", phone_number="+14155550111")
account_connect(account=a)
a.refresh_from_db()
print("ACCOUNT", a.pk, a.webhook_secret)
"""


async def post_all(bases, account_id, secret, n, concurrency):
    """Spread N signed webhooks over the web processes, C connections in all."""
    per_web = [[] for _ in bases]
    for i in range(n):
        body = json.dumps({"id": f"s-{i}", "from": f"+1415555{i % 2000:04d}", "text": f"message {i}"}).encode()
        base = bases[i % len(bases)]
        per_web[i % len(bases)].append(loadgen.build("POST", f"{base}/webhooks/sandbox/{account_id}/", body=body, headers={
            "Content-Type": "application/json", "X-Sandbox-Signature": sign(secret, body)}))
    runs = await asyncio.gather(*(
        loadgen.closed_loop(base, requests, max(1, concurrency // len(bases))) for base, requests in zip(bases, per_web)))
    return [latency for latencies, _ in runs for latency in latencies]


def run_layout(webs: int, workers: int, n: int, concurrency: int) -> dict:
    pg = redis = product = None
    try:
        pg, redis = Postgres(), Redis()
        product = Product(database_url=pg.url, redis_url=redis.url, Q_WORKERS="2", LOG_LEVEL="WARNING")
        product.manage("migrate", "--no-input", "-v0")
        _, account_id, secret = next(l for l in product.shell(SETUP).splitlines() if l.startswith("ACCOUNT")).split()
        bases = [product.start_web(f"web-{i}") for i in range(webs)]
        for i in range(workers):
            product.start_worker(f"worker-{i}")
        time.sleep(2)
        started = time.monotonic()
        latencies = asyncio.run(post_all(bases, account_id, secret, n, concurrency))
        acked = time.monotonic() - started
        with psycopg.connect(pg.url, autocommit=True) as conn:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                done = conn.execute("SELECT count(*) FROM conversations_message WHERE direction='inbound'").fetchone()[0]
                if done >= n:
                    break
                time.sleep(0.2)
        elapsed = time.monotonic() - started
        latencies.sort()
        return {"acked_per_s": n / acked, "processed_per_s": done / elapsed, "done": done,
                "ack_p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1000}
    finally:
        if product:
            product.stop_all()
        if redis:
            redis.stop()
        if pg:
            pg.destroy()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=40)
    args = parser.parse_args()
    results = {}
    print(f"{'web x worker':>13} {'acks/s':>8} {'ack p99 ms':>11} {'processed/s':>12}")
    for webs, workers in ((1, 1), (2, 1), (1, 2), (2, 2)):
        r = run_layout(webs, workers, args.messages, args.concurrency)
        results[(webs, workers)] = r
        print(f"{webs:>6} x {workers:<5} {r['acked_per_s']:8.0f} {r['ack_p99_ms']:11.1f} {r['processed_per_s']:12.0f}"
              f"{'' if r['done'] >= args.messages else '  (incomplete: ' + str(r['done']) + ' filed)'}")
    base = results[(1, 1)]["processed_per_s"]
    print(f"scaling ratio 2x2 / 1x1: {results[(2, 2)]['processed_per_s'] / base:.2f} "
          f"(workers 1->2 with 1 web: {results[(1, 2)]['processed_per_s'] / base:.2f})")
    print("This machine has 2 cores shared by PostgreSQL, Redis, the web and worker processes and the load "
          "generator, so more processes mostly compete for the same cores; the ratio shows the code scales "
          "out (no shared in-process state), not what more machines would give.")


if __name__ == "__main__":
    main()
