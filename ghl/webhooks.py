"""Webhooks from GHL: messages sent from GHL (the conversation providers' Delivery URLs) and the
app's lifecycle events. The signature is checked on the raw body before anything is stored:
`X-GHL-Signature` (Ed25519, current) or `X-WH-Signature` (RSA-SHA256, legacy), with GHL's
public keys from settings (docs/oauth/WebhookAuthentication.md). Stale timestamps (> 5 min) and
repeated webhook ids are refused.

One Delivery URL serves every sub-account: a marketplace app has one per conversation provider
for all its installs, so a delivery is routed by its signed `locationId`. The WhatsApp provider
has its own (…/provider/whatsapp/): GHL's deliveries carry no provider id, and a custom provider
is of type SMS (docs/marketplace modules/ConversationProviders.md), so the address is what tells
a WhatsApp send from an SMS one. There is no unsigned fallback: a per-location secret address
cannot be a marketplace app's one Delivery URL, and one secret for the whole app would let
whoever holds it speak for every location."""
import base64
import binascii
import json
import logging
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.models import Location
from contacts.models import Contact
from ghl.models import WebhookReceipt
from ghl.send_choice import account_tags_mirror
from ghl.installs import app_installed, app_uninstalled
from ghl.services import provider_outbound, uninstall
from whatsnap.errors import ApplicationError
from whatsnap.request_body import body_within

logger = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
MAX_AGE = timezone.timedelta(minutes=5)


@lru_cache(maxsize=4)
def _public_key(pem: str):
    return serialization.load_pem_public_key(pem.encode()) if pem else None


def signature_valid(raw: bytes, headers) -> bool:
    ghl_sig = headers.get("X-GHL-Signature")
    if ghl_sig:
        key = _public_key(settings.GHL_WEBHOOK_PUBLIC_KEY)
        if not isinstance(key, ed25519.Ed25519PublicKey):
            logger.error("GHL webhook refused: GHL_WEBHOOK_PUBLIC_KEY is not an Ed25519 public key")
            return False
        try:
            key.verify(base64.b64decode(ghl_sig, validate=True), raw)
            return True
        except (InvalidSignature, binascii.Error, ValueError):
            return False
    legacy = headers.get("X-WH-Signature")
    if legacy:
        key = _public_key(settings.GHL_WEBHOOK_LEGACY_PUBLIC_KEY)
        if not isinstance(key, rsa.RSAPublicKey):
            logger.error("GHL webhook refused: GHL_WEBHOOK_LEGACY_PUBLIC_KEY is not an RSA public key")
            return False
        try:
            key.verify(base64.b64decode(legacy, validate=True), raw, padding.PKCS1v15(), hashes.SHA256())
            return True
        except (InvalidSignature, binascii.Error, ValueError):
            return False
    return False


def _error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def _read(request):
    """(payload, None) for a verified, fresh webhook; else (None, response). Whether it was
    seen before is decided by _first_delivery, inside the transaction that acts on it."""
    if not body_within(request, MAX_BODY):  # read no more than that, signed or not
        return None, _error(413, "Webhook body too large.", "too_large")
    raw = request.body
    if not signature_valid(raw, request.headers):
        logger.warning("GHL webhook refused: missing or invalid signature (from %s)", request.META.get("REMOTE_ADDR"))
        return None, _error(403, "Missing or invalid GHL signature.", "forbidden")
    try:
        payload = json.loads(raw)
    except ValueError:
        return None, _error(400, "The body is not JSON.", "malformed")
    if not isinstance(payload, dict):
        return None, _error(400, "The body must be a JSON object.", "malformed")
    stamp = payload.get("timestamp")
    if stamp:
        at = parse_datetime(str(stamp)) if isinstance(stamp, str) else None
        if at is None or abs(timezone.now() - at) > MAX_AGE:
            return None, _error(403, "Stale or unreadable webhook timestamp.", "stale")
    return payload, None


def _first_delivery(payload: dict) -> bool:
    """Record the webhook id as seen; False when it was seen before. Called inside the
    transaction that acts on the webhook: if acting fails, the id is not kept, so GHL's
    redelivery is acted on instead of being answered "duplicate" with nothing done."""
    webhook_id = payload.get("webhookId")
    if not webhook_id:
        return True
    try:
        with transaction.atomic():
            WebhookReceipt.objects.create(webhook_id=str(webhook_id)[:100])
    except IntegrityError:
        return False
    return True


DUPLICATE = {"ok": True, "outcome": "duplicate"}


def _provider(request, *, channel: str = ""):
    payload, refusal = _read(request)
    if refusal:
        return refusal
    if channel:
        payload = {**payload, "provider": channel}  # kept with the delivery: the channel its send takes
    try:
        with transaction.atomic():
            if not _first_delivery(payload):
                return JsonResponse(DUPLICATE)
            outcome, _ = provider_outbound(payload=payload)
    except ApplicationError as exc:
        return _error(404 if exc.code == "unknown_location" else 400, exc.message, exc.code or "invalid")
    # "queued": stored; the drainer reads the GHL contact, chooses the account and sends it, or
    # fails it in GHL with the reason (ghl/outbound.py)
    return JsonResponse({"ok": True, "outcome": outcome})


@csrf_exempt
@require_POST
def provider_webhook(request):
    """The SMS provider's Delivery URL (the default SMS provider, or the custom one)."""
    return _provider(request)


@csrf_exempt
@require_POST
def whatsapp_provider_webhook(request):
    """The WhatsApp provider's Delivery URL (GHL_WHATSAPP_PROVIDER_ID)."""
    return _provider(request, channel="whatsapp")


@csrf_exempt
@require_POST
def app_webhook(request):
    """INSTALL / UNINSTALL and contact tag updates (so moving a contact to another account's
    tag in GHL moves its replies to that account)."""
    payload, refusal = _read(request)
    if refusal:
        return refusal
    with transaction.atomic():
        if not _first_delivery(payload):
            return JsonResponse(DUPLICATE)
        return _app_event(payload)


def _app_event(payload: dict) -> JsonResponse:
    kind = payload.get("type")
    # GHL signs every marketplace app's webhooks with one key (docs/oauth/WebhookAuthentication.md),
    # so another app's developer holds signed INSTALL/UNINSTALL bodies of our tenants' sub-accounts;
    # GHL's always name their app (AppInstall.md, AppUninstall.md): one not naming ours is not ours
    if kind in ("INSTALL", "UNINSTALL") and settings.GHL_APP_ID and payload.get("appId") != settings.GHL_APP_ID:
        return JsonResponse({"ok": True, "outcome": "ignored: another app's event"})
    if kind == "INSTALL":
        return JsonResponse({"ok": True, "outcome": app_installed(payload)})
    if kind == "UNINSTALL":
        return JsonResponse({"ok": True, "outcome": app_uninstalled(payload, uninstall)})
    if kind == "ContactTagUpdate":
        changed = _account_tags_from_ghl(payload)
        return JsonResponse({"ok": True, "outcome": f"{changed} account tag change(s)"})
    return JsonResponse({"ok": True, "outcome": "ignored"})


def _account_tags_from_ghl(payload: dict) -> int:
    """Mirror whatsnap-account-* tags set or removed in GHL onto our contact
    (send_choice.account_tags_mirror: other tags are GHL's own business, and a tag of ours GHL
    has not been told of yet is kept)."""
    location = Location.objects.filter(ghl_location_id=str(payload.get("locationId") or "")).first()
    if location is None:
        return 0
    contact = Contact.objects.filter(location=location, ghl_contact_id=str(payload.get("id") or payload.get("contactId") or "")).first()
    if contact is None:
        return 0
    with transaction.atomic():
        added, removed = account_tags_mirror(contact, [str(t) for t in payload.get("tags") or []], same_ghl_contact=True)
    return len(added) + len(removed)
