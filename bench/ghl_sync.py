"""GHL sync against the loopback GHL stand-in enforcing the burst limit (prints figures; no
pass/fail).

Seeds a throwaway PostgreSQL with N inbound messages from C contacts of one location, with
exactly the outbox rows the inbound pipeline writes (one contact upsert per new person, one
inbound message per message), then drains the outbox as the worker does and prints:

- the achieved request rate as a fraction of the allowed limit (target >= 90%) and the
  number of 429s (target 0);
- API calls per inbound message (lower is better: tags ride in the upsert, unchanged
  contacts cost nothing);
- after an outage (GHL answering 503 for a while, new messages piling up): the backlog size,
  and the time from GHL's recovery until the backlog is drained.

Time is compressed: GHL's 100 requests / 10 s becomes 100 / (10 s x --scale); the outage
(5 minutes) and the backoff cap (5 minutes) are compressed by the same factor.

    .venv/bin/python -m bench.ghl_sync [--messages 10000] [--contacts 2000] [--scale 0.1] [--backlog 10000]
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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--contacts", type=int, default=2_000)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--scale", type=float, default=0.1, help="time compression (0.1: 10 s window -> 1 s)")
    args = parser.parse_args()
    pg = Postgres()
    try:
        env = {**os.environ, "DATABASE_URL": pg.url, "DJANGO_SETTINGS_MODULE": "whatsnap.settings", "SECRET_KEY": "b" * 50,
               "ENCRYPTION_KEY": "e" * 40, "ALLOWED_HOSTS": "testserver", "WHATSNAP_VAR_DIR": str(pg.dir / "var"),
               "GHL_RATE_LIMIT_WINDOW_SECONDS": str(10.0 * args.scale), "GHL_CLIENT_ID": "ghl-client",
               "GHL_CLIENT_SECRET": "ghl-secret", "GHL_CONVERSATION_PROVIDER_ID": "prov-bench"}
        env.pop("REDIS_URL", None)
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
        os.environ.update({k: env[k] for k in env if k.startswith(("GHL_", "DATABASE_URL", "DJANGO_", "SECRET_KEY", "ENCRYPTION_KEY", "ALLOWED_HOSTS", "WHATSNAP_VAR_DIR"))})
        import django

        django.setup()
        run(args)
    finally:
        pg.destroy()


def seed(location, account, standin, *, messages: int, contacts: int, first_phone: int = 0):
    """The rows the inbound pipeline writes, in bulk: contacts with the account tag,
    conversations, messages, and their outbox rows in message order."""
    from django.utils import timezone

    from contacts.models import Contact, ContactTag
    from conversations.models import Conversation, Message
    from ghl.models import OutboxItem

    now = timezone.now()
    people = Contact.objects.bulk_create([
        Contact(location=location, phone=f"+1415{first_phone + i:07d}", name=f"Person {first_phone + i}", name_source="platform")
        for i in range(contacts)
    ], batch_size=2000) if contacts else list(Contact.objects.filter(location=location).order_by("id"))
    if contacts:
        ContactTag.objects.bulk_create([ContactTag(contact=c, tag=account.tag) for c in people], batch_size=2000)
        Conversation.objects.bulk_create([Conversation(location=location, contact=c, account=account) for c in people], batch_size=2000)
    conversations = {c.contact_id: c for c in Conversation.objects.filter(location=location)}
    msgs = Message.objects.bulk_create([
        Message(location=location, conversation=conversations[people[i % len(people)].pk], account=account, direction="inbound",
                text=f"message {i}", provider_message_id=f"p{first_phone}-{i}", status="received", sent_at=now)
        for i in range(messages)
    ], batch_size=2000)
    rows, seen = [], set()
    for i, message in enumerate(msgs):
        person = people[i % len(people)]
        if contacts and person.pk not in seen:
            seen.add(person.pk)
            rows.append(OutboxItem(location=location, contact=person, account=account, operation="contact_upsert", payload={}))
        rows.append(OutboxItem(location=location, contact=person, account=account, operation="inbound_message", payload={"message_id": message.pk}))
    OutboxItem.objects.bulk_create(rows, batch_size=2000)
    return len(rows)


def drain_all(location_id: int, *, until_empty=True):
    """What the worker does: drain, and when GHL asked us to wait, wait and drain again."""
    from django.utils import timezone

    from ghl import sync
    from ghl.models import GhlConnection, OutboxItem

    while OutboxItem.objects.filter(location_id=location_id, status="pending").exists():
        sync.location_drain(location_id=location_id, budget_seconds=30)
        paused = GhlConnection.objects.get(location_id=location_id).paused_until
        nxt = OutboxItem.objects.filter(location_id=location_id, status="pending").order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
        wake = max(filter(None, [paused, nxt]), default=None)
        if wake and wake > timezone.now():
            time.sleep((wake - timezone.now()).total_seconds())
        if not until_empty:
            return


def run(args):
    from django.conf import settings

    from accounts.models import Location
    from accounts.services import account_connect, account_create
    from ghl import sync
    from ghl.client import store_tokens, token_request
    from ghl.models import GhlConnection, OutboxItem
    from tests.standins.ghl_standin import GhlStandIn

    window = 10.0 * args.scale
    standin = GhlStandIn(rate_limit=100, window=window)
    settings.GHL_API_BASE_URL = standin.url
    sync.MAX_BACKOFF = 300.0 * args.scale
    location = Location.objects.create(name="Bench", slug="bench")
    account = account_create(location=location, kind="android_sms", backend="sandbox", name="Bench", phone_number="+14155550111")
    account_connect(account=account)
    account.refresh_from_db()
    connection = GhlConnection.objects.create(location=location)
    store_tokens(connection, token_request({"grant_type": "authorization_code", "code": standin.issue_code("ghl-bench")}))
    connection.save()
    Location.objects.filter(pk=location.pk).update(ghl_location_id="ghl-bench")
    location.refresh_from_db()
    allowed = 100 / window

    rows = seed(location, account, standin, messages=args.messages, contacts=args.contacts)
    print(f"seeded {args.messages:,} inbound messages from {args.contacts:,} contacts ({rows:,} outbox rows); "
          f"limit 100 requests / {window:g} s = {allowed:.0f} requests/s")
    standin.calls.clear()
    started = time.monotonic()
    drain_all(location.pk)
    elapsed = time.monotonic() - started
    calls = len(standin.api_calls())
    done = OutboxItem.objects.filter(location=location, status="done").count()
    failed = OutboxItem.objects.filter(location=location, status="failed").count()
    print(f"drained {done:,} rows ({failed} failed) with {calls:,} API calls in {elapsed:.1f} s")
    print(f"  achieved rate        {calls / elapsed:.1f} requests/s = {calls / elapsed / allowed:.1%} of the limit")
    print(f"  429 answers          {standin.throttled}")
    print(f"  API calls / message  {calls / args.messages:.3f}")
    print(f"  GHL contacts         {len(standin.contacts):,} (expected {args.contacts:,}); GHL messages {len(standin.messages):,}")

    # --- outage: GHL answers 503 while messages keep coming --------------------------------
    outage = 300.0 * args.scale
    standin.go_down(503)
    standin.calls.clear()
    standin.throttled = 0
    seed(location, account, standin, messages=args.backlog, contacts=0, first_phone=900_000)
    t0 = time.monotonic()
    while time.monotonic() - t0 < outage:
        drain_all(location.pk, until_empty=False)
    backlog = OutboxItem.objects.filter(location=location, status="pending").count()
    standin.recover()
    recovered, recovered_wall = time.monotonic(), time.time()
    drain_all(location.pk)
    drained_in = time.monotonic() - recovered
    first_ok = min((c.at for c in standin.calls if c.status == 200 and c.at >= recovered_wall), default=recovered_wall)
    wasted = len([c for c in standin.calls if c.status == 503])
    lost = OutboxItem.objects.filter(location=location).exclude(status="done").count()
    messages_in_ghl = len(standin.messages)
    print(f"outage of {outage:.0f} s (5 min x {args.scale:g}): {backlog:,} rows waiting, {wasted} probing calls during the outage")
    print(f"  drained after recovery in {drained_in:.1f} s ({backlog / max(drained_in, 1e-9):.0f} rows/s; "
          f"first success {first_ok - recovered_wall:.1f} s after recovery: the backoff in progress)")
    print(f"  not done: {lost}; GHL messages {messages_in_ghl:,} (expected {args.messages + args.backlog:,}); 429s {standin.throttled}")
    standin.close()


if __name__ == "__main__":
    main()
