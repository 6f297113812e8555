"""The account page's diagnostics list webhooks that were accepted but not filed, with their
reason, and an admin's "Re-run" files the ones today's code understands (issue 17, point 1) —
in the product started as bin/run starts it, with its worker.

One unfiled event arrives as a real signed webhook the sandbox backend does not file (an
unknown `type`); the other is a row as an earlier version kept it (a body it could not read),
made through the product's own ORM in a `manage.py shell` against the running product's
database, since no webhook of today makes one."""
import hashlib
import hmac
import json
import os
import subprocess

import httpx
import pytest

from tests.browser.conftest import ROOT, add_sandbox_android, log_in_as_admin

pytestmark = [pytest.mark.browser]

OLDER_REASON = "message of a kind this version did not read"
MAKE_OLDER_ROW = """
from accounts.models import Account
from conversations.models import InboundEvent
account = Account.objects.get(pk={pk})
InboundEvent.objects.create(
    account=account, kind="unfiled", status="unfiled", dedupe_key="unf:older-version-1", error={reason!r},
    payload={{"reason": {reason!r}, "envelope": {{"id": "sbx-older-1", "from": "+14155550166", "name": "Hedy",
                                                "text": "Are you open on Sunday?"}}}})
print("SECRET=" + account.webhook_secret)
"""


def _product_shell(running_product, code: str) -> str:
    """Run code in `manage.py shell` against the running product's database and keys."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "REDIS_URL")}
    for line in open(running_product["keys_file"]).read().splitlines():
        name, _, value = line.partition("=")
        env[name] = value
    env.update(DJANGO_SETTINGS_MODULE="whatsnap.settings", WHATSNAP_VAR_DIR=running_product["var_dir"],
               PUBLIC_BASE_URL=running_product["base"], LOG_LEVEL="WARNING")
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "manage.py", "shell", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_unfiled_events_are_listed_with_their_reason_and_rerun(running_product, browser):
    from playwright.sync_api import expect

    base = running_product["base"]
    context = browser.new_context()
    page = context.new_page()
    log_in_as_admin(page, running_product)

    # a simulated Android phone: linked at once
    pk = add_sandbox_android(page, base, name="diagnostics", phone="+14155550160")

    secret = _product_shell(running_product, MAKE_OLDER_ROW.format(pk=pk, reason=OLDER_REASON)).split("SECRET=")[1].strip()
    body = json.dumps({"type": "typing", "id": "typing-1", "from": "+14155550166"}).encode()
    answer = httpx.post(f"{base}/webhooks/sandbox/{pk}/", content=body, headers={
        "Content-Type": "application/json", "X-Sandbox-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()})
    assert answer.status_code == 200, answer.text  # acknowledged ...

    page.goto(f"{base}/accounts/{pk}/")  # ... and kept, with its reason
    rows = page.locator("#unfiled-events tr.unfiled-reason")
    expect(rows).to_have_count(2)
    typing = rows.filter(has_text="unsupported event type 'typing'")
    older = rows.filter(has_text=OLDER_REASON)
    expect(typing).to_contain_text("1")
    expect(older).to_contain_text("1")
    expect(page.locator("#diagnostics")).to_contain_text("2 webhook event(s) were accepted but not filed")

    older.locator("button.rerun").click()
    expect(page.locator(".messages")).to_contain_text("Re-ran 1 unfiled event(s): 1 filed", timeout=10_000)
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("unsupported event type 'typing'")

    # what the re-run filed reaches the inbox through the worker, like any webhook
    page.goto(base + "/inbox/")
    expect(page.locator("#conversation-list a.conv", has_text="Hedy")).to_contain_text("Are you open on Sunday?", timeout=15_000)

    # the one today's sandbox still does not file stays, with its reason
    page.goto(f"{base}/accounts/{pk}/")
    page.click("#rerun-all-unfiled")
    expect(page.locator(".messages")).to_contain_text("0 filed, 0 queued for filing, 1 still unfiled", timeout=10_000)
    expect(rows).to_have_count(1)
    context.close()
