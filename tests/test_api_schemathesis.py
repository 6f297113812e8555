"""The OpenAPI schema describes what the API does: schemathesis reads the schema the app serves
on loopback (pytest-django's live server) and sends generated requests for every operation
over HTTP, on a seeded location (no 500s; status codes, content types, headers and bodies as
documented). Valid requests with an admin token and with an agent-scoped token, and invalid
ones (the documented 400 error body). Bounded: a few examples per operation, derandomized.
Outbound network is refused so a generated Twilio account or webhook URL cannot reach outside
127.0.0.1."""
import socket

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from contacts.services import tag_create
from conversations.models import Conversation
from hooks.models import WebhookDelivery
from hooks.services import hook_subscription_create
from routing.models import RoutingRule, Team
from tests.test_api_support import receive

EXAMPLES_PER_OPERATION = int(__import__("os").environ.get("API_FUZZ_EXAMPLES", 6))
# Conformance, not "every schema-valid request succeeds": business rules (a taken slug, an
# opted-out contact) rightly answer a documented 400 to schema-valid input.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, ignored_auth]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "testserver"}


@pytest.fixture
def loopback_only(monkeypatch):
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if str(host) not in LOOPBACK:
            raise socket.gaierror(f"test: no network beyond loopback ({host})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


@pytest.fixture
def seeded(settings, api_client, location, sandbox_account, agent_user, loopback_only, monkeypatch):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens: Twilio accounts land in "error"
    monkeypatch.setattr("conversations.pacing.sleep", lambda seconds: None)
    tag_create(location=location, name="vip")
    receive(sandbox_account, phone="+14155550123", name="Ada")
    team = Team.objects.create(location=location, name="Support")
    rule = RoutingRule.objects.create(location=location, name="r", target="unassigned")
    subscription = hook_subscription_create(location=location, url="http://127.0.0.1:9/hook", events=["message.status"])
    conversation = Conversation.objects.get()
    message = api_client.post("/api/v1/messages/", {"conversation": conversation.pk, "text": "hi"}, format="json").json()
    return {
        "accounts": sandbox_account.pk, "contacts": conversation.contact_id, "tags": sandbox_account.tag.pk,
        "conversations": conversation.pk, "messages": message["id"], "routing-rules": rule.pk, "teams": team.pk,
        "users": agent_user.pk, "webhooks": subscription.pk,
        "webhook-deliveries": WebhookDelivery.objects.filter(subscription=subscription).first().pk,
    }


def _pinned_ids(path: str, ids: dict) -> dict | None:
    """Path parameters naming seeded objects, so operations also run on objects that exist."""
    resource = path.split("/")[3]
    if "{id}" not in path or resource not in ids:
        return None
    pinned = {"id": ids[resource]}
    if "{tag_name}" in path:
        pinned["tag_name"] = "vip"
    return pinned


def _fuzz(schema, headers: dict, *, mode, seeded: dict | None, methods=None, checks=CHECKS, examples=EXAMPLES_PER_OPERATION) -> tuple[int, list]:
    failures, operations = [], 0
    # Deletions last, so the other operations also meet the seeded objects.
    for operation in sorted((r.ok() for r in schema.get_all_operations()), key=lambda op: op.method.upper() == "DELETE"):
        if methods and operation.method.upper() not in methods:
            continue
        operations += 1
        strategies = [operation.as_strategy(mode)]
        pinned = _pinned_ids(operation.path, seeded) if seeded else None
        if pinned:
            strategies.append(operation.as_strategy(mode, path_parameters=pinned))
        for strategy in strategies:

            @given(case=strategy)
            @hypothesis_settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case):
                case.call_and_validate(headers=headers, checks=checks)

            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failures, then report
                failures.append(f"{operation.method.upper()} {operation.path}:\n{exc}")
    return operations, failures


@pytest.fixture
def schema(live_server, seeded):
    return schemathesis.openapi.from_url(f"{live_server.url}/api/v1/schema/")


def test_api_matches_its_schema(api_key, seeded, schema):
    # Driven through hypothesis directly (schemathesis' pytest plugin does not support pytest 9 yet).
    operations, failures = _fuzz(schema, {"Authorization": f"Token {api_key}"}, mode=GenerationMode.POSITIVE, seeded=seeded)
    assert operations >= 30
    assert not failures, "\n\n".join(failures)


def test_agent_token_answers_as_documented(location, agent_user, seeded, schema):
    """An agent-scoped token: reads of its own view, 403/404 for the rest — all as documented."""
    from accounts.services import api_token_create

    _, key = api_token_create(location=location, user=agent_user, name="agent")
    operations, failures = _fuzz(schema, {"Authorization": f"Token {key}"}, mode=GenerationMode.POSITIVE, seeded=seeded,
                                 examples=3)
    assert operations >= 30
    assert not failures, "\n\n".join(failures)


def test_invalid_requests_get_documented_errors(api_key, seeded, schema):
    """Schema-invalid input: never a 500, and the answer is a documented error body."""
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations, failures = _fuzz(schema, {"Authorization": f"Token {api_key}"}, mode=GenerationMode.NEGATIVE, seeded=seeded,
                                 methods={"POST", "PATCH", "GET"}, checks=checks, examples=3)
    assert operations >= 20
    assert not failures, "\n\n".join(failures)
