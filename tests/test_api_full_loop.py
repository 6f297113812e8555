"""scripts/api_full_loop.py against the product as it is deployed: uvicorn and `manage.py
qcluster` as separate processes on loopback (on the PostgreSQL that bin/test starts, else a
fresh SQLite file), Twilio's REST API served by the script's own stand-in."""
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
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.servers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def database_url(tmp_path):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield f"sqlite:///{tmp_path / 'loop.sqlite3'}"
        return
    import psycopg

    name = "whatsnap_loop_" + secrets.token_hex(4)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield urlparse(url)._replace(path="/" + name).geturl()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_full_loop_script_over_http(database_url, tmp_path):
    port, twilio_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL")}
    env.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="whatsnap.settings", SECRET_KEY="k" * 40,
               ENCRYPTION_KEY="e" * 40, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}", WHATSNAP_VAR_DIR=str(tmp_path),
               TWILIO_API_BASE_URL=f"http://127.0.0.1:{twilio_port}", Q_WORKERS="1")
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
    token = subprocess.run([py, "manage.py", "create_api_token", "Loop Inc"], cwd=ROOT, env=env, check=True,
                           capture_output=True, text=True).stdout.strip().splitlines()[-1]
    procs = [
        subprocess.Popen([py, "-m", "uvicorn", "whatsnap.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                          "--lifespan", "off", "--log-level", "warning"], cwd=ROOT, env=env, start_new_session=True),
        subprocess.Popen([py, "manage.py", "qcluster"], cwd=ROOT, env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                httpx.get(base + "/livez", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        result = subprocess.run(
            [py, "scripts/api_full_loop.py", "--base", base, f"--token={token}", "--twilio-standin", f"127.0.0.1:{twilio_port}",
             "--from", "+1 (415) 555-0123", "--timeout", "40"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "has the tags whatsnap-account-loop-" in out and "full loop OK" in out
        assert '"status": "sent"' in out or '"status": "delivered"' in out
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
