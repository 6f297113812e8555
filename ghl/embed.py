"""Who is opening WhatSnap inside GoHighLevel: the user data GHL hands a custom page, decrypted
with the app's Shared Secret, and the WhatSnap member it stands for.

GHL's documented mechanism (highlevel-api-docs, "docs/marketplace modules/
shared_secret_customJS_customPages.md"): the page asks its parent frame for the user data
(postMessage REQUEST_USER_DATA), gets an encrypted string back and the backend decrypts it as
`CryptoJS.AES.decrypt(data, sharedSecret)` does — the OpenSSL format: base64 of "Salted__",
an 8-byte salt and the ciphertext; key and IV from EVP_BytesToKey (MD5, one round) over the
secret and the salt; AES-256-CBC with PKCS#7 padding. Inside is JSON: userId, companyId,
role ('admin' | 'user'), type, activeLocation (only when a sub-account is open), userName,
email.

The format has no timestamp, nonce or MAC: a payload works until the secret is rotated, and a
changed ciphertext is only caught by its padding or its JSON. So every way of not reading it
gets one and the same answer, and the sign-in view counts those as failed logins (django-axes).

Mapping, as a hostile sub-account admin sees it (they create GHL users with any name and
e-mail): an existing WhatSnap user is used only when the GhlUser row of this location links
them and they are a member of this location alone, with no more than GHL's role; otherwise the GHL user gets a
dedicated WhatSnap user of its own for this location (username `ghl:<location>:<GHL user id>`,
which no sign-up form accepts; no usable password), with the role GHL gives them."""
import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from accounts.models import Location, Membership
from accounts.services import member_update
from ghl.models import GhlConnection, GhlUser
from whatsnap.errors import ApplicationError

SALTED = b"Salted__"
MAX_PAYLOAD_CHARS = 8192
DEDICATED_PREFIX = "ghl:"
GHL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

NOT_CONFIGURED = ("Signing in from GoHighLevel is not set up on this WhatSnap server (its GHL_SHARED_SECRET is empty). "
                  "Ask the person who runs WhatSnap, or log in with your WhatSnap username and password.")
NOT_READABLE = ("GoHighLevel's user data could not be read. The Shared Secret set on this WhatSnap server must be the one "
                "of the marketplace app (Advanced Settings > Auth); ask the person who runs WhatSnap.")
AGENCY_VIEW = "You opened WhatSnap from the agency view. Open WhatSnap from a sub-account to work in its inbox."
NOT_CONNECTED = ("This GoHighLevel sub-account is not connected to WhatSnap. A WhatSnap admin connects it on "
                 "WhatSnap's GoHighLevel page.")
NOT_ALLOWED = "Your WhatSnap user for this sub-account may not sign in from GoHighLevel. Ask a WhatSnap admin."


@dataclass(frozen=True)
class GhlUserData:
    """The decrypted user data, checked."""

    user_id: str
    company_id: str
    role: str
    location_id: str  # '' in the agency view
    name: str
    email: str

    @property
    def member_role(self) -> str:
        return Membership.Role.ADMIN if self.role == "admin" else Membership.Role.AGENT


def _key_and_iv(secret: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """OpenSSL's EVP_BytesToKey with MD5 and one iteration: D_i = MD5(D_(i-1) + secret + salt),
    concatenated until there are 32 bytes of key and 16 of IV."""
    derived, block = b"", b""
    while len(derived) < 48:
        block = hashlib.md5(block + secret + salt).digest()
        derived += block
    return derived[:32], derived[32:48]


def decrypt_user_data(payload, secret: str) -> dict:
    """The JSON object inside a CryptoJS passphrase ciphertext; ApplicationError(NOT_READABLE)
    for anything else, whatever the reason (one answer: no oracle for padding or format)."""
    if not isinstance(payload, str) or not payload.strip() or len(payload) > MAX_PAYLOAD_CHARS:
        raise ApplicationError(NOT_READABLE, code="unreadable")
    try:
        raw = base64.b64decode(payload.strip(), validate=True)
        if not raw.startswith(SALTED) or len(raw) < 32 or len(raw) % 16:
            raise ValueError("not the salted format")
        key, iv = _key_and_iv(secret.encode(), raw[8:16])
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(raw[16:]) + decryptor.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        data = json.loads((unpadder.update(padded) + unpadder.finalize()).decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise ApplicationError(NOT_READABLE, code="unreadable") from None
    if not isinstance(data, dict):
        raise ApplicationError(NOT_READABLE, code="unreadable")
    return data


def _text(data: dict, key: str, limit: int) -> str:
    value = data.get(key)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _email(value: str) -> str:
    try:
        validate_email(value)
    except ValidationError:
        return ""
    return value.lower()


def user_data(data: dict) -> GhlUserData:
    """The fields WhatSnap uses; a payload without a usable userId is not readable either."""
    user_id = _text(data, "userId", 64)
    location_id = _text(data, "activeLocation", 64)
    if not GHL_ID.match(user_id) or (location_id and not GHL_ID.match(location_id)):
        raise ApplicationError(NOT_READABLE, code="unreadable")
    return GhlUserData(user_id=user_id, company_id=_text(data, "companyId", 64), role=_text(data, "role", 20).lower(),
                       location_id=location_id, name=_text(data, "userName", 150), email=_email(_text(data, "email", 254)))


def read_user_data(payload) -> GhlUserData:
    secret = settings.GHL_SHARED_SECRET
    if not secret:
        raise ApplicationError(NOT_CONFIGURED, code="not_configured")
    return user_data(decrypt_user_data(payload, secret))


def location_for(who: GhlUserData) -> Location:
    """The WhatSnap location connected to the GHL sub-account the user has open."""
    if not who.location_id:
        raise ApplicationError(AGENCY_VIEW, code="agency")
    connection = (GhlConnection.objects.filter(location__ghl_location_id=who.location_id, status=GhlConnection.Status.CONNECTED)
                  .select_related("location").first())
    if connection is None or (connection.company_id and connection.company_id != who.company_id):
        raise ApplicationError(NOT_CONNECTED, code="not_connected")
    return connection.location


def dedicated_username(location: Location, ghl_user_id: str) -> str:
    return f"{DEDICATED_PREFIX}{location.pk}:{ghl_user_id}"


def _may_stand_for(user, location: Location, who: GhlUserData) -> bool:
    """An existing user linked to the GHL user may be signed in as them only when nothing
    beyond this location is at stake: no staff, no other location, not a dedicated user (of
    another GHL user) — and not more than GHL grants: the link is made by e-mail, which GHL
    does not verify, so a GHL user (not admin) is never handed a WhatSnap admin's login."""
    if not user.is_active or user.is_staff or user.is_superuser or user.username.startswith(DEDICATED_PREFIX):
        return False
    roles = dict(Membership.objects.filter(user=user).values_list("location_id", "role"))
    if set(roles) != {location.pk}:
        return False
    return who.member_role == Membership.Role.ADMIN or roles[location.pk] != Membership.Role.ADMIN


def _dedicated_user(location: Location, who: GhlUserData):
    User = get_user_model()
    username = dedicated_username(location, who.user_id)
    first, _, last = who.name.partition(" ")
    user = User.objects.filter(username=username).first()
    if user is None:
        try:
            with transaction.atomic():
                user = User(username=username, email=who.email, first_name=first[:150], last_name=last[:150])
                user.set_unusable_password()
                user.save()
        except IntegrityError:  # the same GHL user opened WhatSnap twice at once
            user = User.objects.get(username=username)
    # a login WhatSnap made for this GHL user has no password and no other location; one of that
    # name made some other way (an admin elsewhere adding a login named ghl:<location>:<id>, with a
    # password they know) is somebody's trap, never handed over
    if (not user.is_active or user.is_staff or user.is_superuser or user.has_usable_password()
            or Membership.objects.filter(user=user).exclude(location=location).exists()):
        raise ApplicationError(NOT_ALLOWED, code="not_allowed")
    changed = {"email": who.email or user.email, "first_name": first[:150] or user.first_name, "last_name": last[:150] or user.last_name}
    if any(getattr(user, field) != value for field, value in changed.items()):
        for field, value in changed.items():
            setattr(user, field, value)
        user.save(update_fields=list(changed))
    return user


def _follow_role(membership: Membership, role: str) -> Membership:
    """GHL's role, on every visit; the location's last admin stays an admin (accounts' rule)."""
    if membership.role == role:
        return membership
    try:
        return member_update(membership=membership, role=role, capacity=membership.capacity)
    except ApplicationError:
        return membership


@transaction.atomic
def member_for(*, location: Location, who: GhlUserData) -> Membership:
    """The membership the GHL user works as: made on the first visit."""
    defaults = {"email": who.email, "name": who.name}
    link, created = GhlUser.objects.get_or_create(location=location, ghl_user_id=who.user_id, defaults=defaults)
    if not created and any(value and getattr(link, field) != value for field, value in defaults.items()):
        GhlUser.objects.filter(pk=link.pk).update(**{field: value for field, value in defaults.items() if value})
    if link.user is not None and _may_stand_for(link.user, location, who):
        # a member WhatSnap manages keeps the role WhatSnap gave them
        return Membership.objects.select_related("location", "user").get(user=link.user, location=location)
    user = _dedicated_user(location, who)
    if link.user_id is None:
        GhlUser.objects.filter(pk=link.pk).update(user=user)
    membership, made = Membership.objects.get_or_create(user=user, location=location, defaults={"role": who.member_role})
    if not made:
        membership = _follow_role(membership, who.member_role)
    membership.user, membership.location = user, location
    return membership
