"""Inbox speed on a large location (prints figures; no pass/fail).

Seeds PostgreSQL (a throwaway server on loopback) with N contacts and M messages through SQL,
then measures the server time of the inbox list, a filtered list (tag + unassigned), a
search and a thread page — each next to the time of the bare SQL query that fetches the same
rows. Target: p95 < 100 ms per page and within 3x of the bare query. The two report pages
(aggregates over every message of the period, computed in SQL) are measured the same way.

    .venv/bin/python -m bench.inbox [--contacts 100000] [--messages 1000000] [--runs 30]
"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import Postgres  # noqa: E402

SEED = """
INSERT INTO contacts_tag (location_id, name, created_at) SELECT id, 'vip', now() FROM accounts_location;
INSERT INTO contacts_contact (location_id, kind, phone, phone_is_e164, name, name_source, opted_out, ghl_contact_id, created_at, updated_at)
  SELECT 1, 'person', '+1555' || lpad(i::text, 7, '0'), true, 'Contact ' || i, 'platform', false, '', now() - (i || ' seconds')::interval, now()
  FROM generate_series(1, %(contacts)s) i;
INSERT INTO contacts_contacttag (contact_id, tag_id, added_at) SELECT id, 1, now() FROM contacts_contact;
INSERT INTO contacts_contacttag (contact_id, tag_id, added_at) SELECT id, 2, now() FROM contacts_contact WHERE id %% 10 = 0;
INSERT INTO conversations_conversation (location_id, contact_id, account_id, status, unread_count, last_message_at, last_message_preview, created_at, assignee_id)
  SELECT 1, id, 1, 'open', 0, now() - (id || ' seconds')::interval, 'message text ' || id, now(), CASE WHEN id %% 3 = 0 THEN NULL ELSE 1 END
  FROM contacts_contact;
INSERT INTO conversations_message (location_id, conversation_id, account_id, direction, is_note, text, media, provider_message_id, status, error, send_attempts, sent_at, created_at, status_changed_at)
  SELECT 1, c, 1, CASE WHEN j %% 2 = 0 THEN 'inbound' ELSE 'outbound' END, false,
         'hello number ' || (c * 31 + j) || CASE WHEN c %% 5000 = 0 THEN ' refund please' ELSE '' END,
         '[]', 'p' || c || '-' || j, 'delivered', '', 0, now() - ((c * 10 + j) || ' seconds')::interval, now(), now()
  FROM generate_series(1, %(contacts)s) c, generate_series(1, %(per)s) j;
ANALYZE;
"""


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    per = max(1, args.messages // args.contacts)
    pg = Postgres()
    try:
        env = {**os.environ, "DATABASE_URL": pg.url, "DJANGO_SETTINGS_MODULE": "whatsnap.settings", "SECRET_KEY": "b" * 50,
               "ENCRYPTION_KEY": "e" * 40, "ALLOWED_HOSTS": "testserver", "WHATSNAP_VAR_DIR": str(pg.dir / "var")}
        env.pop("REDIS_URL", None)
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
        os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "ENCRYPTION_KEY",
                                               "ALLOWED_HOSTS", "WHATSNAP_VAR_DIR")})
        import django

        django.setup()
        from django.db import connection

        started = time.monotonic()
        from accounts.models import Location
        from accounts.services import account_connect, account_create

        # the location, its account and the account's tag (ids 1) through the services
        bench_location = Location.objects.create(name="Bench", slug="bench", timezone="UTC")
        account_connect(account=account_create(location=bench_location, kind="android_sms", backend="sandbox",
                                               name="bench", phone_number="+14155550111"))
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined) "
                           "VALUES ('', false, 'agent', '', '', '', false, true, now())")
            for statement in SEED.split(";\n"):
                if statement.strip():
                    cursor.execute(statement, {"contacts": args.contacts, "per": per})
            # what the app keeps on each conversation as messages are written (reports read it)
            import importlib

            for statement in importlib.import_module("conversations.migrations.0007_conversation_first_response").BACKFILL:
                cursor.execute(statement)
            cursor.execute("ANALYZE")
            cursor.execute("INSERT INTO accounts_membership (user_id, location_id, role, availability, capacity, timezone) VALUES (1, 1, 'admin', 'online', 20, '')")
        print(f"seeded {args.contacts:,} contacts, {args.contacts * per:,} messages in {time.monotonic() - started:.0f} s")
        from conversations.rollups import rollup_refresh

        started = time.monotonic()
        days = rollup_refresh(bench_location, settle_seconds=0)  # what the sweeper does every minute
        print(f"report rollups: {days} days recounted from scratch in {time.monotonic() - started:.1f} s "
              "(later refreshes recount only the days new messages fall on)")
        measure(args.runs)
    finally:
        pg.destroy()


def measure(runs: int):
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    client.force_login(get_user_model().objects.get(username="agent"))
    pages = {
        "inbox list": "/inbox/",
        "filtered (tag + unassigned)": "/inbox/?view=unassigned&tag=2",
        "search (text)": "/inbox/?q=refund",
        "thread": "/inbox/777/",
        "report, location (30 days)": "/reports/",
        "report, account (30 days)": "/accounts/1/report/",
    }
    print(f"{'page':30} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8} {'bare SQL p95':>13} {'ratio':>6}")
    for label, url in pages.items():
        client.get(url)  # warm
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        query_count = len(captured.captured_queries)
        main_sql = max(captured.captured_queries, key=lambda q: float(q["time"]))["sql"]
        page_times, sql_times = [], []
        for _ in range(runs):
            t = time.perf_counter()
            client.get(url)
            page_times.append(time.perf_counter() - t)
            with connection.cursor() as cursor:
                t = time.perf_counter()
                cursor.execute(main_sql)
                cursor.fetchall()
                sql_times.append(time.perf_counter() - t)
        print(f"{label:30} {pct(page_times, 50):8.1f} {pct(page_times, 95):8.1f} {query_count:8d} "
              f"{pct(sql_times, 95):13.1f} {pct(page_times, 95) / max(pct(sql_times, 95), 0.001):6.1f}")
    print("targets: p95 < 100 ms per page; page within 3x of its slowest bare query (the ratio above is page/slowest query)")


if __name__ == "__main__":
    main()
