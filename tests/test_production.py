import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from django.test import Client

ROOT = Path(__file__).resolve().parents[1]


def test_check_deploy_is_clean_when_configured_as_readme_says():
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(DJANGO_SETTINGS_MODULE="whatsnap.settings", DEBUG="0", SECRET_KEY="x" * 30 + "-Aa1!" * 8,
               ENCRYPTION_KEY="e" * 40, PUBLIC_BASE_URL="https://whatsnap.example.com", ALLOWED_HOSTS="whatsnap.example.com",
               SECURE_HSTS_PRELOAD="1", WHATSNAP_VAR_DIR="/tmp/whatsnap-deploy-check")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_settings_refuse_missing_keys_without_debug():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ENCRYPTION_KEY", "DJANGO_SETTINGS_MODULE")}
    env.update(DEBUG="0", DJANGO_SETTINGS_MODULE="whatsnap.settings")
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_request_id_echoed_and_in_the_json_log_lines_of_that_request(twilio_account):
    from whatsnap.logs import JsonFormatter, RequestIdFilter

    response = Client().get("/livez", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    assert len(Client().get("/livez", HTTP_X_REQUEST_ID="bad id\n")["X-Request-ID"]) == 32

    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(json.loads(self.format(record)))

    handler = Collect(level=logging.WARNING)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("conversations.webhooks")
    logger.addHandler(handler)
    try:
        forged = Client().post(f"/webhooks/twilio/{twilio_account.pk}/", {"MessageSid": "SM1", "From": "+14155550123", "Body": "x"},
                               HTTP_X_TWILIO_SIGNATURE="forged", HTTP_X_REQUEST_ID="req-42")
    finally:
        logger.removeHandler(handler)
    assert forged.status_code == 403
    [line] = [entry for entry in lines if "refused" in entry["message"]]
    assert line["request_id"] == "req-42" and line["level"] == "WARNING" and "secret-auth-token" not in json.dumps(line)


def test_json_log_line_has_request_id():
    from whatsnap.logs import JsonFormatter, RequestIdFilter

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello world" and line["request_id"] == "-" and line["level"] == "WARNING"


def test_forged_twilio_webhook_log_has_no_secret(twilio_account, caplog):
    with caplog.at_level(logging.INFO):
        Client().post(f"/webhooks/twilio/{twilio_account.pk}/", {"MessageSid": "SM1", "From": "+1", "Body": "x"},
                      HTTP_X_TWILIO_SIGNATURE="forged")
    assert "refused" in caplog.text
    assert "secret-auth-token" not in caplog.text
