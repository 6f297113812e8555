"""Bad input is a 400, a form error or ignored, never a 500 (issue 15.9): every page of the
product (every URL pattern outside the Django admin and the REST API, which schemathesis
covers) is requested with junk in every query parameter the pages read and posted junk in
every form field it renders, as a location admin. Any answer 2xx/3xx/4xx is fine; a 5xx or an
exception fails."""
import re
from datetime import datetime, timezone as dt_tz

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.providers.base import InboundMessage
from contacts.models import Tag
from conversations.models import Conversation, Message
from conversations.services import webhook_events_record
from routing.models import RoutingRule, Team

QUERY_NAMES = ("account", "tag", "page", "before", "current", "status", "q", "view", "start", "end", "format",
               "operation", "phone", "link", "name", "error", "error_description", "code", "state", "next")
JUNK = ("abc", "99999999999999999999", "\u00b2", "0001-01-01")
HUGE_ID = 99999999999999999999  # matches <int:…>, past every database's integer range
SKIPPED = ("admin/", "api/", "logout/", "static/")
FIELD = re.compile(r'name="([A-Za-z_][\w\-]*)"')


def _patterns(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _paths(route: str, ids: dict[str, int]) -> list[str]:
    """Concrete paths for a route: its <int:…> by the id of a real object of the kind the route
    names (found by its prefix), and by an id past every integer range; each <str:…> by junk."""
    route = re.sub(r"<str:\w+>", "junk", route)
    if "<int:" not in route:
        return ["/" + route]
    real = next((n for prefix, n in ids.items() if route.startswith(prefix)), 1)
    return ["/" + re.sub(r"<int:\w+>", str(n), route) for n in (real, HUGE_ID)]


@pytest.fixture
def world(location, admin_user, sandbox_account, settings):
    # nothing a junk request could reach leaves the machine
    settings.GHL_API_BASE_URL = settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"
    settings.TWILIO_MESSAGING_BASE_URL = settings.SMS_GATEWAY_CLOUD_BASE_URL = "http://127.0.0.1:9"
    webhook_events_record(account=sandbox_account, events=[InboundMessage(
        provider_id="p1", from_phone="+14155550123", name="Ada", text="hi", at=datetime.now(dt_tz.utc),
        media=({"url": "http://127.0.0.1:9/cat.jpg", "content_type": "image/jpeg"},))])
    conversation = Conversation.objects.get()
    team = Team.objects.create(location=location, name="Sales team")
    tag = Tag.objects.get(account=sandbox_account)
    rule = RoutingRule.objects.create(location=location, name="r", target="user", target_user=admin_user)
    return {  # the longest prefixes first
        "inbox/messages/": Message.objects.get().pk, "inbox/": conversation.pk, "contacts/": conversation.contact_id,
        "accounts/": sandbox_account.pk, "sandbox/": sandbox_account.pk, "webhooks/": sandbox_account.pk,
        "tags/": tag.pk, "routing/rules/": rule.pk, "routing/teams/": team.pk, "ghl/": location.pk,
        "settings/members/": admin_user.memberships.get().pk,
    }


def _ok(response, what: str) -> None:
    assert response.status_code < 500, f"{what} answered {response.status_code}"


def test_junk_in_every_query_parameter_and_form_field_is_never_a_500(world, admin_user):
    client = Client()
    client.force_login(admin_user)
    routes = [r for r in _patterns(get_resolver().url_patterns) if not r.startswith(SKIPPED)]
    assert len(routes) > 40  # the walk found the product's pages
    for route in routes:
        for path in _paths(route, world):
            page = client.get(path)
            _ok(page, f"GET {path}")
            body = b"".join(page.streaming_content) if page.streaming else page.content  # a CSV export streams
            fields = set(FIELD.findall(body.decode(errors="replace"))) - {"csrfmiddlewaretoken"}
            for junk in JUNK:
                _ok(client.get(path, {name: junk for name in QUERY_NAMES}), f"GET {path} with {junk!r}")
                _ok(client.post(path, {name: junk for name in fields | set(QUERY_NAMES[:4])}), f"POST {path} with {junk!r}")
        client.force_login(admin_user)  # a junk post may have changed the session (e.g. a location switch)
