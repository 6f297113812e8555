"""Calling the Evolution API gateway: its address and key, the instance of an account, WhatsApp
ids as the gateway wants them, and reading the instance token back from the gateway.

Sources (EvolutionAPI/evolution-api): src/api/routes/instance.router.ts and
src/api/controllers/instance.controller.ts (fetchInstances: the global key sees every instance,
filtered by `?instanceName=`); src/api/services/monitor.service.ts (v2: a list of the
instances' database rows, the token in `token`; v1, up to 1.8: `{instance: {instanceName,
apikey, ...}}`, one object when a name was given)."""
from django.conf import settings

from accounts.providers import transport
from accounts.providers.base import QrUpdated
from accounts.providers.transport import Gateway

GATEWAY = Gateway(service="WhatsApp gateway", unauthorized="The WhatsApp gateway refused EVOLUTION_API_KEY (401).",
                  reason_fields=("response.message",), base_setting="EVOLUTION_API_BASE_URL", quotable=True)
QR_LIFETIME_SECONDS = 30


def instance_name(account) -> str:
    return account.gateway_resource


def webhook_url(account) -> str:
    return f"{account.webhook_urls()['inbound']}?secret={account.webhook_secret}"


def call(method: str, path: str, *, json_body: dict | None = None, ok_statuses=(), limits=None):
    """One call with the global key. `limits` defaults to the transport's operator limits, read
    at call time."""
    return GATEWAY.call(method, path, headers={"apikey": settings.EVOLUTION_API_KEY}, json_body=json_body,
                        ok_statuses=ok_statuses, limits=limits or transport.OPERATOR_LIMITS)


def chat_jid(to: str) -> str:
    """The WhatsApp id of a chat as WhatSnap names it: '+14155550123' -> '14155550123@s.whatsapp.net';
    a group or LID id ('…@g.us', '…@lid') as it is."""
    if "@" in to:
        return to
    return f"{to.lstrip('+')}@s.whatsapp.net"


def qr_events(qrcode: dict | None) -> list:
    code = (qrcode or {}).get("code")
    if not code:
        return []
    return [QrUpdated(qr=code, pairing_code=qrcode.get("pairingCode") or "", expires_in=QR_LIFETIME_SECONDS)]


def token_of(created_or_fetched) -> str:
    """The instance token in one of the gateway's answers: `hash` of a create (a string; older
    gateways `{"apikey": ...}`), or an instance of fetchInstances (`token`, older `apikey`)."""
    value = created_or_fetched
    if isinstance(value, dict):
        value = value.get("apikey") or value.get("token") or ""
    return str(value or "")


def fetch_instance_token(name: str) -> str | None:
    """The token the gateway holds for instance `name` (GET /instance/fetchInstances), '' when
    it shows none (it hides tokens unless AUTHENTICATION_EXPOSE_IN_FETCH_INSTANCES), None when
    the gateway has no instance of that name."""
    response = call("GET", f"/instance/fetchInstances?instanceName={name}", ok_statuses=(404,))
    if response.status_code == 404:
        return None
    answer = GATEWAY.json(response)
    rows = answer if isinstance(answer, list) else [answer]
    for row in rows:
        if not isinstance(row, dict):
            continue
        if isinstance(row.get("instance"), dict):  # v1: {instance: {instanceName, apikey, ...}}
            row = row["instance"]
        if (row.get("name") or row.get("instanceName")) == name:
            return token_of(row)
    return None


