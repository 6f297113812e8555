"""On PostgreSQL the product migrates, serves over ASGI with `manage.py qcluster` running,
answers /healthz, and the real worker files a webhook."""
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psycopg
import pytest

from accounts.providers.sandbox import sign

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.servers

SETUP = """
from accounts.models import Location
from accounts.services import account_create, account_connect
loc = Location.objects.create(name="PG", slug="pg")
a = account_create(location=loc, kind="android_sms", backend="sandbox", name="pg", phone_number="+14155550111")
account_connect(account=a)
a.refresh_from_db()
print("ACCOUNT", a.pk, a.webhook_secret)
"""


@pytest.fixture
def pg_database():
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("needs the PostgreSQL that bin/test starts")
    name = "whatsnap_e2e_" + secrets.token_hex(4)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield urlparse(url)._replace(path="/" + name).geturl()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_asgi_and_worker_on_postgresql(pg_database, tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL")}
    env.update(DATABASE_URL=pg_database, DJANGO_SETTINGS_MODULE="whatsnap.settings", SECRET_KEY="k" * 40,
               ENCRYPTION_KEY="e" * 40, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", WHATSNAP_VAR_DIR=str(tmp_path))
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run([py, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=env, check=True, capture_output=True, text=True).stdout
    _, account_id, secret = next(l for l in out.splitlines() if l.startswith("ACCOUNT")).split()
    procs = [
        subprocess.Popen([py, "-m", "uvicorn", "whatsnap.asgi:application", "--port", str(port), "--lifespan", "off",
                          "--log-level", "warning"], cwd=ROOT, env=env, start_new_session=True),
        subprocess.Popen([py, "manage.py", "qcluster"], cwd=ROOT, env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                health = httpx.get(base + "/healthz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert health.status_code == 200 and health.json()["database"]["ok"]
        body = json.dumps({"id": "pg-1", "from": "+14155550123", "name": "Pat", "text": "on postgres"}).encode()
        response = httpx.post(f"{base}/webhooks/sandbox/{account_id}/", content=body,
                              headers={"Content-Type": "application/json", "X-Sandbox-Signature": sign(secret, body)})
        assert response.status_code == 200
        with psycopg.connect(pg_database, autocommit=True) as conn:
            for _ in range(150):
                row = conn.execute("SELECT count(*) FROM conversations_message WHERE provider_message_id = 'pg-1'").fetchone()
                if row[0]:
                    break
                time.sleep(0.2)
            assert row[0] == 1
            tags = conn.execute(
                "SELECT t.name FROM contacts_contacttag ct JOIN contacts_tag t ON t.id = ct.tag_id "
                "JOIN contacts_contact c ON c.id = ct.contact_id WHERE c.phone = '+14155550123'"
            ).fetchall()
            assert tags == [("whatsnap-account-pg",)]
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
