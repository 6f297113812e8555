"""WhatSnap opened as a custom page inside GoHighLevel (issue 21.2): GHL's page frames
/ghl/app/, answers its REQUEST_USER_DATA message with the encrypted user data (GHL's docs:
"docs/marketplace modules/shared_secret_customJS_customPages.md"), and the frame ends up in
the inbox, signed in as that GHL user — no password typed.

GHL's page is played by a small page served on loopback from another port (the same site,
127.0.0.1, so the plain-http cookies of the test product work in the frame like the
Partitioned ones do over https). The product runs as bin/run starts it, with the parent's
origin in GHL_EMBED_ORIGINS and the app's Shared Secret in GHL_SHARED_SECRET; a page on an
origin not listed there cannot frame it."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import ROOT, _free_port
from tests.test_ghl_embed import cryptojs_encrypt

pytestmark = [pytest.mark.browser]

SECRET = "browser-test-shared-secret"
GHL_LOCATION = "yLKVZpNppIdYpah4RjNE"
GHL_USER = "MKQJ7wOVVmNOMvrnKKKK"
CONNECT = f"""
from accounts.models import Location
from ghl.models import GhlConnection
location = Location.objects.get(slug="demo")
location.ghl_location_id = "{GHL_LOCATION}"
location.save()
GhlConnection.objects.create(location=location, company_id="GNb7aIv4rQFVb9iwNl5K", installed_ghl_location_id="{GHL_LOCATION}")
print("LOCATION=%d" % location.pk)
"""
# GHL's side of the handshake, as its docs describe it: the custom page posts
# {{message: "REQUEST_USER_DATA"}} to its parent, which answers REQUEST_USER_DATA_RESPONSE.
PARENT = """<!doctype html><title>GHL (stand-in)</title>
<h1>GoHighLevel sub-account</h1>
<iframe id="app" src="{src}" style="width:1200px;height:800px" onload="window.frameLoads=(window.frameLoads||0)+1"></iframe>
<script>
window.asked = 0;
window.addEventListener("message", function (event) {{
  if (event.data && event.data.message === "REQUEST_USER_DATA") {{
    window.asked += 1;
    event.source.postMessage({{message: "REQUEST_USER_DATA_RESPONSE", payload: {payload}}}, event.origin);
  }}
}});
</script>"""


class _Parent(BaseHTTPRequestHandler):
    html = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(self.server.html)

    def log_message(self, *args):
        pass


def _serve_parent(port: int, html: str) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Parent)
    server.html = html.encode()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _keys_env(keys_file: Path) -> dict:
    return dict(line.split("=", 1) for line in keys_file.read_text().splitlines() if "=" in line)


@pytest.fixture(scope="module")
def embedded_product():
    """bin/run with GHL_EMBED_ORIGINS naming the stand-in parent's origin (only it)."""
    port, parent_port, stranger_port = _free_port(), _free_port(), _free_port()
    var_dir = tempfile.mkdtemp(prefix="whatsnap-embed-")
    keys_file = Path(tempfile.mkdtemp(prefix="whatsnap-keys-")) / "keys.env"
    test_only = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PUBLIC_BASE_URL", "SECRET_KEY", "ENCRYPTION_KEY", "ALLOWED_HOSTS")
    env = {k: v for k, v in os.environ.items() if k not in test_only}
    env.update(PORT=str(port), WHATSNAP_VAR_DIR=var_dir, WHATSNAP_KEYS_FILE=str(keys_file),
               GHL_SHARED_SECRET=SECRET, GHL_EMBED_ORIGINS=f"http://127.0.0.1:{parent_port}")
    log = open(Path(var_dir) / "run.log", "w+")
    proc = subprocess.Popen([str(ROOT / "bin" / "run")], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(base + "/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            log.seek(0)
            pytest.fail(f"bin/run did not start:\n{log.read()}")
        shell_env = {**env, **_keys_env(keys_file), "DJANGO_SETTINGS_MODULE": "whatsnap.settings", "PUBLIC_BASE_URL": base, "LOG_LEVEL": "WARNING"}
        done = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "manage.py", "shell", "-c", CONNECT], cwd=ROOT, env=shell_env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        location_pk = int(done.stdout.split("LOCATION=")[1])
        yield {"base": base, "parent_port": parent_port, "stranger_port": stranger_port, "location": location_pk}
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(var_dir, ignore_errors=True)
        shutil.rmtree(keys_file.parent, ignore_errors=True)


def _user_data(**overrides) -> str:
    data = {"userId": GHL_USER, "companyId": "GNb7aIv4rQFVb9iwNl5K", "role": "admin", "type": "agency",
            "activeLocation": GHL_LOCATION, "userName": "Jane Roe", "email": "jane.roe@example.com", **overrides}
    return cryptojs_encrypt(json.dumps(data), SECRET)


def test_a_ghl_user_opening_the_custom_page_lands_in_the_inbox_signed_in(embedded_product, browser):
    from playwright.sync_api import expect

    base = embedded_product["base"]
    parent = _serve_parent(embedded_product["parent_port"], PARENT.format(src=f"{base}/ghl/app/", payload=json.dumps(_user_data())))
    try:
        page = browser.new_context().new_page()
        page.goto(f"http://127.0.0.1:{embedded_product['parent_port']}/")
        frame = page.frame_locator("#app")
        # signed in as the GHL user's own WhatSnap login, in the inbox, with the live socket open
        # (the header names people by name: the login made for the GHL user carries its userName)
        expect(frame.locator("header.top")).to_contain_text("Jane Roe", timeout=15_000)
        expect(frame.locator("header.top")).to_contain_text("Demo Business")
        expect(frame.locator("#live-state")).to_have_text("Live", timeout=10_000)
        app = page.frame(url=re.compile(r".*/inbox/$"))
        assert app is not None and page.evaluate("window.asked") == 1
        # the inbox works inside the frame: HTMX requests carry the CSRF token, a form posts
        frame.locator("select[name=availability]").select_option("away")
        expect(frame.locator("select[name=availability]")).to_have_value("away")
        Path(ROOT / "var").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "var" / "ghl_embed_inbox.png"), full_page=True)
    finally:
        parent.shutdown()


def test_a_page_not_in_ghl_embed_origins_cannot_frame_whatsnap(embedded_product, browser):
    base = embedded_product["base"]
    stranger = _serve_parent(embedded_product["stranger_port"], PARENT.format(src=f"{base}/ghl/app/", payload=json.dumps(_user_data())))
    try:
        page = browser.new_context().new_page()
        page.goto(f"http://127.0.0.1:{embedded_product['stranger_port']}/")
        page.wait_for_function("window.frameLoads >= 1", timeout=15_000)
        # the browser refused to show it (frame-ancestors): WhatSnap's page never ran
        assert page.evaluate("window.asked") == 0
        assert not page.frame_locator("#app").locator("#ghl-embed").count()
    finally:
        stranger.shutdown()
