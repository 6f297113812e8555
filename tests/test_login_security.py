"""Issue 15, point 8: failed logins lock out a username at one address (django-axes), two-factor
login with an authenticator app (django-otp) that a location can require, and the admin
behind the same login."""
import re
import time

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Location
from accounts.consumers import _second_factor_missing
from whatsnap.login import client_ip

WRONG = "not-the-password"


def _post_login(client, username, password, url="/login/"):
    return client.post(url, {"username": username, "password": password})


def _fail(client, username, times, url="/login/"):
    return [_post_login(client, username, WRONG, url).status_code for _ in range(times)]


def _cool_off():
    AccessAttempt.objects.update(attempt_time=timezone.now() - timezone.timedelta(minutes=16))


def _code(device, steps_ahead=0) -> str:
    """The authenticator app's code, `steps_ahead` 30-second steps from now (a code is accepted
    once: a later login in the same half-minute uses the next step, within the tolerance)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():06d}"


def _unthrottle(device):
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None, throttling_failure_count=0)


def _device(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="app", confirmed=True)


def _log_in_with_code(user, password, device, url="/login/", steps_ahead=1) -> Client:
    client = Client()
    assert _post_login(client, user.get_username(), password, url)["Location"] == "/login/code/"
    assert client.post("/login/code/", {"code": _code(device, steps_ahead)}).status_code == 302
    return client


# --- lockout ------------------------------------------------------------------------------------
def test_sixth_failed_login_is_locked_out_until_the_cool_off(agent_user, api_client):
    attacker = Client()
    statuses = _fail(attacker, "teammate", 5)
    assert statuses[:4] == [200] * 4  # the form again, "please enter a correct username and password"
    assert _post_login(attacker, "teammate", WRONG).status_code == 429
    right = _post_login(attacker, "teammate", "pw-teammate")
    assert right.status_code == 429 and "Too many failed attempts" in right.content.decode()
    assert "_auth_user_id" not in attacker.session  # the right password did not log in
    # the same user at their own address is not locked out by someone else's guessing
    assert _post_login(Client(REMOTE_ADDR="198.51.100.20"), "teammate", "pw-teammate").status_code == 302
    # the REST API is token-authenticated: not affected
    assert api_client.get("/api/v1/contacts/").status_code == 200
    _cool_off()
    assert _post_login(attacker, "teammate", "pw-teammate").status_code == 302


def test_admin_login_is_locked_out_too(db):
    get_user_model().objects.create_user("ops", password="ops-password-1", is_staff=True, is_superuser=True)
    client = Client()
    assert client.get("/admin/login/").status_code == 200
    _fail(client, "ops", 5, url="/admin/login/")
    assert _post_login(client, "ops", "ops-password-1", url="/admin/login/").status_code == 429
    assert client.get("/admin/").status_code == 302  # still not in
    _cool_off()
    assert _post_login(client, "ops", "ops-password-1", url="/admin/login/").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_limits_come_from_the_settings(agent_user, settings):
    settings.AXES_FAILURE_LIMIT = 2
    client = Client()
    assert _fail(client, "teammate", 2) == [200, 429]


def test_client_address_behind_trusted_proxies(settings):
    request = RequestFactory().post("/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7")
    assert client_ip(request) == "10.0.0.2"  # no proxy trusted: the header is the client's own words
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.7"  # appended by our proxy; 6.6.6.6 was made up by the client
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request) == "6.6.6.6"
    settings.TRUSTED_PROXY_COUNT = 3
    assert client_ip(request) == "10.0.0.2"  # fewer hops than proxies: not through them
    settings.TRUSTED_PROXY_COUNT = 1
    junk = RequestFactory().post("/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-address")
    assert client_ip(junk) == "10.0.0.2"


def test_lockout_behind_a_proxy_counts_the_real_client(agent_user, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    attacker = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.7")
    _fail(attacker, "teammate", 5)
    assert _post_login(attacker, "teammate", "pw-teammate").status_code == 429
    colleague = Client(REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.20")  # same proxy, another client
    assert _post_login(colleague, "teammate", "pw-teammate").status_code == 302


# --- two-factor ---------------------------------------------------------------------------------
def test_enable_two_factor_then_login_requires_the_code(agent_client, agent_user):
    assert "Two-factor login is off" in agent_client.get("/settings/two-factor/").content.decode()
    assert agent_client.post("/settings/two-factor/start/").status_code == 302
    page = agent_client.get("/settings/two-factor/").content.decode()
    assert "<svg" in page and 'id="two-factor-secret"' in page  # the QR, drawn on the server
    device = TOTPDevice.objects.get(user=agent_user, confirmed=False)
    assert agent_client.post("/settings/two-factor/confirm/", {"code": "000000"}).status_code == 400
    _unthrottle(device)
    confirmed = agent_client.post("/settings/two-factor/confirm/", {"code": _code(device)})
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", confirmed.content.decode())
    assert confirmed.status_code == 200 and len(codes) == 10  # recovery codes, this once
    assert codes[0] not in agent_client.get("/settings/two-factor/").content.decode()
    assert agent_client.get("/inbox/").status_code == 200  # the session that turned it on stays in

    browser = Client()
    step = _post_login(browser, "teammate", "pw-teammate")
    assert step.status_code == 302 and step["Location"] == "/login/code/"
    assert browser.get("/inbox/").status_code == 302  # the password alone is not a login
    wrong = browser.post("/login/code/", {"code": "123456"})
    assert wrong.status_code == 400 and "That code is not right" in wrong.content.decode()
    throttled = browser.post("/login/code/", {"code": _code(device, 1)})
    assert throttled.status_code == 400 and "Too many wrong codes" in throttled.content.decode()
    _unthrottle(device)
    assert browser.post("/login/code/", {"code": _code(device, 1)})["Location"] == "/"
    assert browser.get("/inbox/").status_code == 200

    recovery = Client()
    _post_login(recovery, "teammate", "pw-teammate")
    assert recovery.post("/login/code/", {"code": codes[0]}).status_code == 302
    again = Client()
    _post_login(again, "teammate", "pw-teammate")
    assert again.post("/login/code/", {"code": codes[0]}).status_code == 400  # used up


def test_wrong_codes_count_towards_the_lockout(agent_user):
    device = _device(agent_user)
    client = Client()
    _post_login(client, "teammate", "pw-teammate")
    statuses = []
    for _ in range(5):
        _unthrottle(device)  # past django-otp's own wait, to reach the lockout
        statuses.append(client.post("/login/code/", {"code": "000000"}).status_code)
    assert statuses == [400] * 4 + [429]
    _unthrottle(device)
    assert client.post("/login/code/", {"code": _code(device)}).status_code == 429
    assert _post_login(Client(), "teammate", "pw-teammate").status_code == 429  # the password step too


def test_code_step_expires_and_needs_the_password_first(agent_user, settings):
    device = _device(agent_user)
    assert Client().post("/login/code/", {"code": _code(device)})["Location"] == "/login/"
    settings.LOGIN_CODE_STEP_SECONDS = 0
    client = Client()
    _post_login(client, "teammate", "pw-teammate")
    assert client.post("/login/code/", {"code": _code(device)})["Location"] == "/login/"


def test_disable_needs_a_code(agent_user):
    device = _device(agent_user)
    client = _log_in_with_code(agent_user, "pw-teammate", device)
    assert client.post("/settings/two-factor/disable/", {"code": "000000"}).status_code == 400
    assert TOTPDevice.objects.filter(user=agent_user).exists()
    _unthrottle(device)
    assert client.post("/settings/two-factor/disable/", {"code": _code(device, 2)}).status_code == 302
    assert not TOTPDevice.objects.filter(user=agent_user).exists()
    assert _post_login(Client(), "teammate", "pw-teammate")["Location"] == "/"


def test_sessions_from_before_two_factor_are_logged_out(agent_client, agent_user):
    inbox = agent_client.get("/inbox/")
    assert inbox.status_code == 200 and "<nav>" in inbox.content.decode() and "data-live-url" in inbox.content.decode()
    _device(agent_user)  # turned on in another browser
    response = agent_client.get("/inbox/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert "_auth_user_id" not in agent_client.session


def test_location_requires_two_factor_and_members_are_sent_to_set_it_up(admin_client, admin_user, agent_client, agent_user, location, api_client):
    refused = admin_client.post("/settings/location/two-factor/", {"required": "on"})
    assert refused.status_code == 400 and "for yourself first" in refused.content.decode()
    admin = _log_in_with_code(admin_user, "pw-owner", _device(admin_user))
    assert admin.post("/settings/location/two-factor/", {"required": "on"}).status_code == 302
    assert Location.objects.get(pk=location.pk).require_two_factor

    for url in ("/inbox/", "/settings/", "/contacts/", "/admin/"):
        response = agent_client.get(url)
        assert response.status_code == 302 and response["Location"] == "/settings/two-factor/", url
    htmx = agent_client.get("/inbox/list/", HTTP_HX_REQUEST="true")
    assert htmx["HX-Redirect"] == "/settings/two-factor/"
    setup = agent_client.get("/settings/two-factor/").content.decode()
    assert "requires two-factor login" in setup
    assert "<nav>" not in setup and "data-live-url" not in setup and "Log out" in setup  # no menu that would bounce
    assert api_client.get("/api/v1/contacts/").status_code == 200  # the API is token-authenticated
    assert _second_factor_missing(agent_user, {}, agent_user.memberships.select_related("location").get())  # live socket too

    agent_client.post("/settings/two-factor/start/")
    device = TOTPDevice.objects.get(user=agent_user)
    assert agent_client.post("/settings/two-factor/confirm/", {"code": _code(device)}).status_code == 200
    assert agent_client.get("/inbox/").status_code == 200
    refused = agent_client.post("/settings/two-factor/disable/", {"code": _code(device, 1)})
    assert refused.status_code == 400 and "requires two-factor login" in refused.content.decode()


def test_admin_requires_a_verified_session_for_users_with_a_device(db):
    ops = get_user_model().objects.create_user("ops", password="ops-password-1", is_staff=True, is_superuser=True)
    device = _device(ops)
    client = Client()
    step = _post_login(client, "ops", "ops-password-1", url="/admin/login/?next=/admin/")
    assert step["Location"] == "/login/code/"
    assert client.get("/admin/").status_code == 302
    assert client.post("/login/code/", {"code": _code(device)})["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    unverified = Client()
    unverified.force_login(ops)  # a session that never gave a code
    assert unverified.get("/admin/").status_code == 302


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_users_without_two_factor_log_in_with_the_password(agent_user, url):
    client = Client()
    assert _post_login(client, "teammate", "pw-teammate", url).status_code == 302
    assert client.get("/inbox/").status_code == 200


def test_a_member_who_is_no_operator_is_told_what_the_admin_is_for(admin_client):
    """Not a login form again (which would loop: the password is right, the user no operator)."""
    response = admin_client.get("/admin/login/?next=/admin/")
    assert response.status_code == 403
    text = response.content.decode()
    assert "for operators" in text and "createsuperuser" in text and 'href="/settings/"' in text
    assert admin_client.get("/admin/", follow=True).status_code == 403
