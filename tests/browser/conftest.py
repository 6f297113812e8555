"""Browser tests drive Debian's Chromium (Playwright's python package, no browser download)
against the product started exactly as README's run command starts it: bin/run."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def running_product():
    """bin/run on a fresh data directory: SQLite, in-process channel layer, worker."""
    port = _free_port()
    var_dir = tempfile.mkdtemp(prefix="whatsnap-run-")
    test_only = ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "PUBLIC_BASE_URL", "SECRET_KEY", "ENCRYPTION_KEY", "ALLOWED_HOSTS")
    env = {k: v for k, v in os.environ.items() if k not in test_only}
    keys_file = Path(tempfile.mkdtemp(prefix="whatsnap-keys-")) / "keys.env"  # as ~/.config/whatsnap/, not in var/
    env.update(PORT=str(port), WHATSNAP_VAR_DIR=var_dir, WHATSNAP_KEYS_FILE=str(keys_file))
    log = open(Path(var_dir) / "run.log", "w+")
    proc = subprocess.Popen([str(ROOT / "bin" / "run")], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                break
            time.sleep(0.3)
        log.seek(0)
        output = log.read()
        if proc.poll() is not None or "password:" not in output:
            pytest.fail(f"bin/run did not start:\n{output}")
        logins = dict(re.findall(r"user: (\w+)\s+password: (\S+)", output))
        # the keys that open the encrypted secrets are not in the data directory (issue 15.11)
        assert keys_file.read_text().count("KEY=") == 2 and not list(Path(var_dir).glob("*keys*"))
        yield {"base": base, "logins": logins, "var_dir": var_dir, "keys_file": str(keys_file)}
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(var_dir, ignore_errors=True)
        shutil.rmtree(keys_file.parent, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    """Module-scoped: sync Playwright runs an event loop in this thread until it stops, and
    Django refuses database calls from a thread with a running loop."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def log_in_as_admin(page, running_product) -> None:
    """Sign the page in with the demo admin login bin/run printed; it lands in the inbox."""
    page.goto(running_product["base"] + "/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", running_product["logins"]["admin"])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/inbox/"))


def add_sandbox_android(page, base: str, *, name: str, phone: str) -> int:
    """Add a sandbox Android SMS account (a simulated phone, linked at once) through the
    "Add Account" page; its id."""
    page.goto(base + "/accounts/add/")
    page.click("[data-choice=p2p]")
    page.fill("#id_name", name)
    page.select_option("#id_device", "android_sms")
    page.fill("#id_phone_number", phone)
    page.select_option("#id_backend", "sandbox")
    page.click("#connect-account")
    page.wait_for_url(re.compile(r".*/accounts/\d+/$"))
    return int(re.search(r"/accounts/(\d+)/$", page.url).group(1))


def add_sandbox_whatsapp(page, context, base: str, *, name: str, phone: str) -> str:
    """Add a sandbox WhatsApp account and link its simulated phone (the QR "scanned" on the
    sandbox phone page); the phone page's URL."""
    from playwright.sync_api import expect

    page.goto(base + "/accounts/add/")
    page.click("[data-choice=whatsapp]")
    page.fill("#id_name", name)
    page.select_option("#id_backend", "sandbox")
    page.click("#connect-account")
    expect(page.locator("#qr svg")).to_be_visible(timeout=10_000)
    link = page.locator("#sandbox-link").get_attribute("href")
    linking = context.new_page()
    linking.goto(link)
    linking.fill("#id_phone_number", phone)
    linking.click("#link-device")
    expect(page.locator("#connected-as")).to_have_text(f"Connected as {phone}", timeout=10_000)
    linking.close()
    return link.split("?")[0]


def write_from_phone(phone, phone_url: str, *, number: str, name: str, text: str) -> None:
    """The contact `number` (`name`) writes `text` from the sandbox phone page `phone_url`,
    in the browser page `phone`, and sees it sent."""
    from playwright.sync_api import expect

    phone.goto(f"{phone_url}?{urlencode({'phone': number, 'name': name})}")
    phone.fill("#sandbox-text", text)
    phone.click("#sandbox-send")
    expect(phone.locator("#sandbox-thread")).to_contain_text(text, timeout=10_000)


def evaluate_attached(locator, fn: str):
    """`fn` (a JavaScript function of the element) run on what `locator` finds, the way the page
    has it now. A live refresh can swap a part of the page out between the locator finding an
    element and the function running on it; then it is found again."""
    for _ in range(5):
        result = locator.evaluate(f"e => e.isConnected ? [({fn})(e)] : null")
        if result is not None:
            return result[0]
    raise AssertionError(f"{locator} kept being swapped out")
