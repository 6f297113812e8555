"""Structured logs: every line carries the request id (from X-Request-ID or generated, echoed
back in the response); LOG_FORMAT=json writes one JSON object per line."""
import contextvars
import json
import logging
import re
import uuid

_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        supplied = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = supplied if _VALID_ID.match(supplied) else uuid.uuid4().hex
        token = _request_id.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.request_id = _request_id.get()
        return True


# Secrets that travel in URLs (an invitation's token, a webhook address's secret, a gateway's
# ?secret= or ?password=): Django logs the path of every 4xx answer, httpx and uvicorn log URLs.
_SECRET_IN_URL = [
    (re.compile(r"(/invitations/)[^/\s?]+"), r"\1…"),
    (re.compile(r"(/ghl/webhooks/provider/\d+/)[^/\s?]+"), r"\1…"),
    (re.compile(r"([?&](?:secret|password|token|key|apikey|code|state)=)[^&\s'\"]+", re.I), r"\1…"),
]


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_IN_URL:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Every log line leaves without the secrets a URL can carry."""

    def filter(self, record):
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
