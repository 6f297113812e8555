import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.models import Location, Membership
from accounts.services import account_connect, account_create, api_token_create


@pytest.fixture
def location(db):
    return Location.objects.create(name="Acme", slug="acme", timezone="America/New_York")


@pytest.fixture
def other_location(db):
    return Location.objects.create(name="Globex", slug="globex")


def _user(username, location, role):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    if location is not None:
        Membership.objects.create(user=user, location=location, role=role)
    return user


@pytest.fixture
def admin_user(location):
    return _user("owner", location, Membership.Role.ADMIN)


@pytest.fixture
def agent_user(location):
    return _user("teammate", location, Membership.Role.AGENT)


@pytest.fixture
def outsider(other_location):
    return _user("outsider", other_location, Membership.Role.ADMIN)


@pytest.fixture
def admin_client(admin_user):
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def agent_client(agent_user):
    client = Client()
    client.force_login(agent_user)
    return client


@pytest.fixture
def outsider_client(outsider):
    client = Client()
    client.force_login(outsider)
    return client


@pytest.fixture
def api_token_and_key(location):
    """A whole-location token and its key (the key exists only here: the database keeps a hash)."""
    return api_token_create(location=location, name="test")


@pytest.fixture
def api_token(api_token_and_key):
    return api_token_and_key[0]


@pytest.fixture
def api_key(api_token_and_key):
    return api_token_and_key[1]


@pytest.fixture
def api_client(api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key}")
    return client


@pytest.fixture
def sandbox_account(location):
    """A connected sandbox SMS account (P2P kind links at once)."""
    account = account_create(location=location, kind="android_sms", backend="sandbox", name="Sales", phone_number="+14155550111")
    account_connect(account=account)
    account.refresh_from_db()
    return account


@pytest.fixture
def twilio_account(location):
    """A Twilio account with credentials, marked connected without calling Twilio."""
    from accounts.services import account_set_status

    account = account_create(
        location=location,
        kind="twilio",
        backend="twilio",
        name="Support",
        phone_number="+14155550199",
        credentials={"account_sid": "AC" + "1" * 32, "auth_token": "secret-auth-token"},
    )
    account_set_status(account=account, status="connected", reason="test")
    account.refresh_from_db()
    return account


@pytest.fixture
def files():
    """Where the attachments of a reply live: a loopback site (MEDIA_ALLOW_PRIVATE_URLS is on in
    the tests) serving /cat.png (files.png) and /menu.pdf (files.pdf)."""
    from tests.test_guarded_fetch import Site

    png, pdf = b"\x89PNG\r\n\x1a\n" + b"cat" * 100, b"%PDF-1.4 menu"
    site = Site({"/cat.png": (200, {"Content-Type": "image/png"}, png), "/menu.pdf": (200, {"Content-Type": "application/pdf"}, pdf)})
    site.png, site.pdf = png, pdf
    yield site
    site.stop()


class FakeClock:
    """Send pacing's clock: sleeping advances it instantly, so tests control time."""

    def __init__(self):
        from django.utils import timezone

        self.offset = timezone.timedelta(0)
        self.slept = []

    def now(self):
        from django.utils import timezone

        return timezone.now() + self.offset

    def sleep(self, seconds):
        from django.utils import timezone

        self.slept.append(seconds)
        self.offset += timezone.timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def pacing_clock(monkeypatch):
    from conversations import pacing

    clock = FakeClock()
    monkeypatch.setattr(pacing, "clock", clock.now)
    monkeypatch.setattr(pacing, "sleep", clock.sleep)
    return clock


def pytest_collection_modifyitems(items):
    """Every database test commits for real: services queue tasks and live events with
    transaction.on_commit, exactly as in production (no hidden test-only transaction)."""
    for item in items:
        if item.get_closest_marker("browser") or item.get_closest_marker("servers"):
            continue  # talks to a separately started product over HTTP
        marker = item.get_closest_marker("django_db")
        if marker is None or not marker.kwargs.get("transaction"):
            item.add_marker(pytest.mark.django_db(transaction=True))
