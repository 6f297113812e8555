"""WhatSnap opened inside GoHighLevel (issue 21.2): the GHL user is signed in from GHL's
encrypted user data, as a member of the connected location only; pages may be framed by GHL's
origins only; CSRF stays enforced.

Wire format: GoHighLevel/highlevel-api-docs, "docs/marketplace modules/
shared_secret_customJS_customPages.md" — the custom page posts REQUEST_USER_DATA to its parent,
gets REQUEST_USER_DATA_RESPONSE with an encrypted payload, and the backend decrypts it with
CryptoJS.AES.decrypt(payload, sharedSecret): CryptoJS's passphrase mode, i.e. OpenSSL's
"Salted__" format (EVP_BytesToKey over MD5, AES-256-CBC, PKCS#7). The decrypted fields are the
doc's: userId, companyId, role, type, activeLocation (sub-account view only), userName, email."""
import base64
import hashlib
import json
import os
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import Membership
from ghl import embed
from ghl.models import GhlConnection, GhlUser
from whatsnap.errors import ApplicationError
from whatsnap.framing import FramingMiddleware

SECRET = "shared-secret-of-the-marketplace-app"
SIGN_IN = "/ghl/app/sign-in/"


def cryptojs_encrypt(text: str, passphrase: str, salt: bytes | None = None) -> str:
    """What CryptoJS.AES.encrypt(text, passphrase).toString() gives: base64("Salted__" + salt +
    AES-256-CBC(PKCS#7(text))), key and IV made from passphrase and salt by MD5 rounds."""
    salt = salt or os.urandom(8)
    material, previous = b"", b""
    while len(material) < 48:
        previous = hashlib.md5(previous + passphrase.encode() + salt).digest()
        material += previous
    padder = padding.PKCS7(128).padder()
    padded = padder.update(text.encode()) + padder.finalize()
    encryptor = Cipher(algorithms.AES(material[:32]), modes.CBC(material[32:48])).encryptor()
    return base64.b64encode(b"Salted__" + salt + encryptor.update(padded) + encryptor.finalize()).decode()


def user_payload(**overrides) -> dict:
    data = {"userId": "MKQJ7wOVVmNOMvrnKKKK", "companyId": "GNb7aIv4rQFVb9iwNl5K", "role": "user", "type": "agency",
            "activeLocation": "yLKVZpNppIdYpah4RjNE", "userName": "John Doe", "email": "johndoe@gmail.com"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def encrypted(**overrides) -> str:
    return cryptojs_encrypt(json.dumps(user_payload(**overrides)), SECRET)


@pytest.fixture(autouse=True)
def embed_settings(settings):
    settings.GHL_SHARED_SECRET = SECRET
    settings.GHL_EMBED_ORIGINS = ["https://app.gohighlevel.com", "https://app.leadconnectorhq.com"]


@pytest.fixture
def connected(location):
    location.ghl_location_id = "yLKVZpNppIdYpah4RjNE"
    location.save()
    return GhlConnection.objects.create(location=location, company_id="GNb7aIv4rQFVb9iwNl5K",
                                        installed_ghl_location_id="yLKVZpNppIdYpah4RjNE")


def sign_in(client: Client, payload, **headers):
    return client.post(SIGN_IN, json.dumps({"encryptedData": payload}), content_type="application/json", **headers)


# --- reading GHL's user data -------------------------------------------------------------

def test_a_cryptojs_payload_decrypts_to_the_users_fields():
    fixed = cryptojs_encrypt(json.dumps(user_payload()), SECRET, salt=b"12345678")
    assert base64.b64decode(fixed).startswith(b"Salted__12345678")
    who = embed.user_data(embed.decrypt_user_data(fixed, SECRET))
    assert (who.user_id, who.company_id, who.role, who.location_id, who.name, who.email) == (
        "MKQJ7wOVVmNOMvrnKKKK", "GNb7aIv4rQFVb9iwNl5K", "user", "yLKVZpNppIdYpah4RjNE", "John Doe", "johndoe@gmail.com")
    assert who.member_role == Membership.Role.AGENT
    assert embed.user_data(user_payload(role="admin")).member_role == Membership.Role.ADMIN


def test_a_payload_longer_than_one_block_and_unicode_names_survive():
    who = embed.user_data(embed.decrypt_user_data(encrypted(userName="Zoë Ñúñez " + "x" * 60), SECRET))
    assert who.name.startswith("Zoë Ñúñez x")


@pytest.mark.parametrize("payload", [
    "", "not base64 !!", base64.b64encode(b"Salted__12345678" + b"\0" * 5).decode(),  # not whole blocks
    base64.b64encode(b"no salt header here, just bytes!").decode(),
    None, 42, {"a": 1}, "A" * 9000,
])
def test_anything_but_a_readable_payload_gets_one_answer(payload):
    with pytest.raises(ApplicationError) as caught:
        embed.decrypt_user_data(payload, SECRET)
    assert caught.value.message == embed.NOT_READABLE


def test_the_wrong_secret_or_a_flipped_byte_is_not_readable():
    good = encrypted()
    with pytest.raises(ApplicationError, match="could not be read"):
        embed.decrypt_user_data(good, "another-secret")
    raw = bytearray(base64.b64decode(good))
    raw[-1] ^= 0x01  # the padding no longer checks out
    with pytest.raises(ApplicationError, match="could not be read"):
        embed.decrypt_user_data(base64.b64encode(bytes(raw)).decode(), SECRET)
    not_json = cryptojs_encrypt("plain words, not JSON", SECRET)
    with pytest.raises(ApplicationError, match="could not be read"):
        embed.decrypt_user_data(not_json, SECRET)


@pytest.mark.parametrize("bad", [{"userId": ""}, {"userId": "../../x"}, {"userId": None}, {"activeLocation": "a b"}])
def test_user_data_without_a_usable_user_id_is_refused(bad):
    with pytest.raises(ApplicationError, match="could not be read"):
        embed.user_data(user_payload(**bad))


def test_an_invalid_email_is_dropped_not_trusted():
    assert embed.user_data(user_payload(email="not an email")).email == ""


# --- signing in --------------------------------------------------------------------------

def test_a_ghl_user_opening_the_page_lands_in_the_inbox_signed_in(connected, location):
    client = Client()
    page = client.get("/ghl/app/")
    assert page.status_code == 200 and b"ghl-embed.js" in page.content
    response = sign_in(client, encrypted())
    assert response.status_code == 200, response.content
    assert response.json() == {"next": "/inbox/"}
    user = get_user_model().objects.get(username=f"ghl:{location.pk}:MKQJ7wOVVmNOMvrnKKKK")
    assert not user.has_usable_password() and (user.first_name, user.last_name, user.email) == ("John", "Doe", "johndoe@gmail.com")
    assert Membership.objects.get(user=user).location == location
    assert Membership.objects.get(user=user).role == Membership.Role.AGENT
    link = GhlUser.objects.get(location=location, ghl_user_id="MKQJ7wOVVmNOMvrnKKKK")
    assert (link.user, link.email, link.name) == (user, "johndoe@gmail.com", "John Doe")
    inbox = client.get("/inbox/")
    assert inbox.status_code == 200 and inbox.wsgi_request.user == user and inbox.wsgi_request.location == location


def test_the_second_visit_is_the_same_member(connected, location):
    sign_in(Client(), encrypted())
    sign_in(Client(), encrypted(userName="John Q Doe"))
    assert Membership.objects.filter(location=location).count() == 1
    user = Membership.objects.get(location=location).user
    assert (user.first_name, user.last_name) == ("John", "Q Doe")


def test_roles_follow_ghl_on_every_visit(connected, location, admin_user):
    sign_in(Client(), encrypted(role="admin"))
    membership = Membership.objects.get(location=location, user__username__startswith="ghl:")
    assert membership.role == Membership.Role.ADMIN
    sign_in(Client(), encrypted(role="user"))  # demoted in GHL: demoted here
    membership.refresh_from_db()
    assert membership.role == Membership.Role.AGENT


def test_the_locations_only_admin_is_not_demoted_out_of_existence(connected, location):
    sign_in(Client(), encrypted(role="admin"))
    sign_in(Client(), encrypted(role="user"))
    assert Membership.objects.get(location=location).role == Membership.Role.ADMIN


def test_a_linked_member_of_this_location_only_is_signed_in_as_themselves(connected, location, agent_user):
    GhlUser.objects.create(location=location, ghl_user_id="MKQJ7wOVVmNOMvrnKKKK", email="t@example.com", user=agent_user)
    client = Client()
    assert sign_in(client, encrypted(role="admin")).json() == {"next": "/inbox/"}
    assert client.get("/inbox/").wsgi_request.user == agent_user
    # a member WhatSnap manages keeps WhatSnap's role
    assert Membership.objects.get(user=agent_user).role == Membership.Role.AGENT
    assert not get_user_model().objects.filter(username__startswith="ghl:").exists()


@pytest.mark.parametrize("how", ["other_location", "staff", "superuser"])
def test_an_existing_user_with_more_at_stake_is_not_handed_over(connected, location, other_location, how):
    """A sub-account admin can make a GHL user with anyone's e-mail, and the user sync links
    GHL users to members by e-mail: that must not give them the member's WhatSnap login."""
    victim = get_user_model().objects.create_user(username="victim", email="johndoe@gmail.com", password="pw-victim-123")
    Membership.objects.create(user=victim, location=location, role=Membership.Role.ADMIN)
    if how == "other_location":
        Membership.objects.create(user=victim, location=other_location, role=Membership.Role.ADMIN)
    else:
        setattr(victim, "is_staff" if how == "staff" else "is_superuser", True)
        victim.save()
    GhlUser.objects.create(location=location, ghl_user_id="MKQJ7wOVVmNOMvrnKKKK", email="johndoe@gmail.com", user=victim)
    client = Client()
    assert sign_in(client, encrypted(role="admin")).status_code == 200
    signed_in = client.get("/inbox/").wsgi_request.user
    assert signed_in != victim and signed_in.username == f"ghl:{location.pk}:MKQJ7wOVVmNOMvrnKKKK"
    assert GhlUser.objects.get(ghl_user_id="MKQJ7wOVVmNOMvrnKKKK").user == victim  # the sync's link is left alone


def test_another_ghl_users_dedicated_login_is_not_handed_over(connected, location):
    sign_in(Client(), encrypted(userId="FirstUser0000000000"))
    first = get_user_model().objects.get(username=f"ghl:{location.pk}:FirstUser0000000000")
    GhlUser.objects.create(location=location, ghl_user_id="SecondUser000000000", user=first)  # e.g. the same e-mail
    client = Client()
    sign_in(client, encrypted(userId="SecondUser000000000"))
    assert client.get("/inbox/").wsgi_request.user.username == f"ghl:{location.pk}:SecondUser000000000"


def test_a_user_with_two_factor_still_gives_the_code(connected, location, agent_user):
    TOTPDevice.objects.create(user=agent_user, name="phone", confirmed=True)
    GhlUser.objects.create(location=location, ghl_user_id="MKQJ7wOVVmNOMvrnKKKK", user=agent_user)
    client = Client()
    assert sign_in(client, encrypted()).json() == {"next": "/login/code/"}
    assert client.get("/inbox/").status_code == 302  # not signed in before the code
    assert client.get("/login/code/").status_code == 200
    device = TOTPDevice.objects.get(user=agent_user)
    assert client.post("/login/code/", {"code": f"{totp(device.bin_key):06d}"})["Location"] == "/inbox/"
    inbox = client.get("/inbox/")
    assert inbox.wsgi_request.user == agent_user and client.session["pinned_location"] == {"user": agent_user.pk, "location": location.pk}


@pytest.mark.parametrize("overrides, message", [
    ({"activeLocation": None}, embed.AGENCY_VIEW),
    ({"activeLocation": "SomeOtherGhlLocation"}, embed.NOT_CONNECTED),
    ({"companyId": "AnotherAgency0000000"}, embed.NOT_CONNECTED),
])
def test_refusals_say_why_and_sign_no_one_in(connected, overrides, message):
    client = Client()
    response = sign_in(client, encrypted(**overrides))
    assert response.status_code == 403 and response.json() == {"error": message}
    assert client.get("/inbox/").status_code == 302
    assert not get_user_model().objects.filter(username__startswith="ghl:").exists()


def test_an_uninstalled_location_is_not_connected(connected):
    connected.status = GhlConnection.Status.UNINSTALLED
    connected.save()
    assert sign_in(Client(), encrypted()).json() == {"error": embed.NOT_CONNECTED}


def test_a_sub_account_connected_to_another_location_signs_in_there_only(connected, location, other_location):
    """The hostile tenant of the other location: its GHL user data names its own sub-account."""
    other_location.ghl_location_id = "OtherGhlLocation0000"
    other_location.save()
    GhlConnection.objects.create(location=other_location, company_id="GNb7aIv4rQFVb9iwNl5K")
    client = Client()
    sign_in(client, encrypted(activeLocation="OtherGhlLocation0000"))
    assert client.get("/inbox/").wsgi_request.location == other_location
    assert not Membership.objects.filter(location=location, user__username__startswith="ghl:").exists()


def test_unreadable_payloads_are_throttled_like_passwords(connected, settings):
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(2):
        assert sign_in(client, "garbage").json() == {"error": embed.NOT_READABLE}
    assert sign_in(client, "garbage").status_code == 429  # axes' lockout page (the page's script says so)
    locked = sign_in(client, encrypted())
    assert locked.status_code == 429 and "Too many" in locked.json()["error"]


def test_without_the_secret_the_page_says_so(connected, settings):
    settings.GHL_SHARED_SECRET = ""
    response = sign_in(Client(), encrypted())
    assert response.status_code == 403 and response.json() == {"error": embed.NOT_CONFIGURED}
    assert b"GHL_SHARED_SECRET is empty" in Client().get("/ghl/app/").content


def test_csrf_is_enforced_on_the_sign_in(connected):
    client = Client(enforce_csrf_checks=True)
    assert sign_in(client, encrypted()).status_code == 403
    page = client.get("/ghl/app/")
    token = page.cookies["csrftoken"].value
    assert sign_in(client, encrypted(), HTTP_X_CSRFTOKEN=token).json() == {"next": "/inbox/"}
    assert client.get("/ghl/app/sign-in/").status_code == 405


# --- the pinned session ------------------------------------------------------------------

def test_a_session_from_ghl_cannot_switch_to_another_location(connected, location, other_location):
    client = Client()
    sign_in(client, encrypted())
    user = Membership.objects.get(location=location).user
    Membership.objects.create(user=user, location=other_location)  # later invited elsewhere
    assert client.post("/location/switch/", {"location": other_location.pk}).status_code == 404
    # even a session key written some other way is put back
    session = client.session
    session["location_id"] = other_location.pk
    session.save()
    response = client.get("/inbox/")
    assert response.wsgi_request.location == location and client.session["location_id"] == location.pk
    assert [m.location for m in response.context["my_memberships"]] == [location]
    # the same user logging in with a password elsewhere is not pinned
    other = Client()
    other.force_login(user)
    other.post("/location/switch/", {"location": other_location.pk})
    assert other.get("/inbox/").wsgi_request.location == other_location


def test_a_pin_of_another_user_is_ignored(location, other_location, outsider):
    client = Client()
    client.force_login(outsider)
    session = client.session
    session["pinned_location"] = {"user": outsider.pk + 1000, "location": location.pk}
    session.save()
    assert client.get("/inbox/").wsgi_request.location == other_location


# --- framing -----------------------------------------------------------------------------

def test_pages_may_be_framed_by_ghl_only(connected, admin_client):
    for client, path in ((Client(), "/ghl/app/"), (Client(), "/login/"), (admin_client, "/inbox/")):
        response = client.get(path)
        assert response["Content-Security-Policy"] == (
            "frame-ancestors 'self' https://app.gohighlevel.com https://app.leadconnectorhq.com"), path
        assert "X-Frame-Options" not in response, path


def test_without_embed_origins_nothing_may_frame_us(settings):
    settings.GHL_EMBED_ORIGINS = []
    response = Client().get("/login/")
    assert response["Content-Security-Policy"] == "frame-ancestors 'none'"
    assert response["X-Frame-Options"] == "DENY"


def test_a_views_own_policy_keeps_its_directives():
    def view(request):
        response = HttpResponse("x")
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response

    response = FramingMiddleware(view)(None)
    assert response["Content-Security-Policy"] == (
        "default-src 'none'; sandbox; frame-ancestors 'self' https://app.gohighlevel.com https://app.leadconnectorhq.com")


def test_over_https_the_cookies_are_cross_site_and_partitioned(connected, settings):
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SESSION_COOKIE_SAMESITE = settings.CSRF_COOKIE_SAMESITE = "None"
    settings.EMBED_COOKIES_PARTITIONED = True
    client = Client()
    client.get("/ghl/app/")
    response = sign_in(client, encrypted(), secure=True)
    cookie = response.cookies["sessionid"].output()
    assert "SameSite=None; Partitioned" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    assert "Partitioned" in client.get("/ghl/app/", secure=True).cookies["csrftoken"].output()


def test_the_settings_refuse_an_origin_with_a_path():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "GHL_EMBED_ORIGINS": "https://app.gohighlevel.com/x"}
    done = subprocess.run([sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "GHL_EMBED_ORIGINS" in done.stderr


def test_logging_out_of_a_session_from_ghl_leads_back_to_the_ghl_page(connected, admin_client):
    """A GHL user has no WhatSnap password: the login form would be a dead end inside GHL's frame."""
    client = Client()
    sign_in(client, encrypted())
    assert client.post("/logout/")["Location"] == "/ghl/app/"
    assert admin_client.post("/logout/")["Location"] == "/login/"
