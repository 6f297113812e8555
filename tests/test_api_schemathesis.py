"""The OpenAPI schema describes what the API does: schemathesis generates requests for every
operation from the schema and runs them against the WSGI app in-process, on a seeded location
(no 500s; status codes, content types, headers and bodies as documented). Bounded: a few
examples per operation, derandomized, well under a minute. Outbound network is refused so a
generated Twilio account or webhook URL cannot reach outside 127.0.0.1."""
import socket

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
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


def test_api_matches_its_schema(api_token, seeded):
    # Driven through hypothesis directly (schemathesis' pytest plugin does not support pytest 9 yet).
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
    headers = {"Authorization": f"Token {api_token.key}"}
    failures, operations = [], 0
    # Deletions last, so the other operations also meet the seeded objects.
    for operation in sorted((r.ok() for r in schema.get_all_operations()), key=lambda op: op.method.upper() == "DELETE"):
        operations += 1
        strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
        pinned = _pinned_ids(operation.path, seeded)
        if pinned:
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=pinned))
        for strategy in strategies:

            @given(case=strategy)
            @hypothesis_settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=True, database=None,
                                 phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case):
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                run()
            except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failures, then report
                failures.append(f"{operation.method.upper()} {operation.path}:\n{exc}")
    assert operations >= 30
    assert not failures, "\n\n".join(failures)
