"""The SMS Gateway for Android backend (see the package's docstring)."""
import logging

from django import forms
from django.conf import settings

from accounts.providers.android_sms import webhooks
from accounts.providers.android_sms.client import GATEWAY, call, cloud, device_url, webhook_id
from accounts.providers.base import ConnectionChanged, Health, Provider, ProviderError, SendResult, json_envelope
from accounts.providers.transport import decoded
from whatsnap import guarded_fetch

logger = logging.getLogger(__name__)

SMS_EVENTS = ("sms:received", "sms:sent", "sms:delivered", "sms:failed")
# Newer app versions only (mms:received 1.47, mms:downloaded 1.56): a phone that refuses them
# still connects, and its diagnostics say what to update.
MMS_EVENTS = ("mms:received", "mms:downloaded")
EVENTS = SMS_EVENTS + MMS_EVENTS
MMS_ADVICE = "Update SMS Gateway for Android (1.56 or later) and reconnect to receive picture messages (MMS)"
STATE_STATUS = {"Pending": "queued", "Processed": "queued", "Sent": "sent", "Delivered": "delivered", "Failed": "failed"}


class AndroidSmsProvider(Provider):
    key = "android_sms"
    label = "SMS (SMS Gateway for Android)"
    kinds = ("android_sms",)
    settable_config = {"mode": ("local", "cloud"), "device_url": None}
    settable_credentials = ("username", "password", "signing_key")
    idempotent_sends = True  # the gateway answers 409 to a second message with our id
    required_credentials = ("username", "password", "signing_key")
    form_field_of_setting = {"device_url": "gateway_address"}

    def form_fields(self) -> dict[str, forms.Field]:
        return {
            "gateway_mode": forms.ChoiceField(
                required=False,
                label="SMS Gateway mode",
                choices=[("local", "Local server (the phone's own address)"), ("cloud", "Cloud server (api.sms-gate.app)")],
                initial="local",
            ),
            "gateway_address": forms.CharField(
                required=False, max_length=200, label="Phone address (local mode)",
                help_text="The phone's address as the WhatSnap server reaches it, e.g. http://phone.example.com:8080. "
                          "A local-network address (192.168.…) works only when the server is on that network and its operator "
                          "allows it; otherwise use cloud mode."
            ),
            "gateway_username": forms.CharField(required=False, max_length=100, label="SMS Gateway username"),
            "gateway_password": forms.CharField(required=False, label="SMS Gateway password", widget=forms.PasswordInput),
            "gateway_signing_key": forms.CharField(
                required=False,
                label="Webhook signing key",
                widget=forms.PasswordInput,
                help_text="In the app: Settings → Webhooks → Signing Key.",
            ),
        }

    def form_required(self, data: dict) -> tuple[str, ...]:
        required = ("gateway_username", "gateway_password", "gateway_signing_key")
        return required if data.get("gateway_mode", "local") == "cloud" else (*required, "gateway_address")

    def form_settings(self, data: dict) -> tuple[dict, dict]:
        mode = data.get("gateway_mode") or "local"
        config = {"mode": mode, **({"device_url": data["gateway_address"]} if mode == "local" else {})}
        credentials = {"username": data["gateway_username"], "password": data["gateway_password"],
                       "signing_key": data["gateway_signing_key"]}
        return credentials, config

    def address_problems(self, *, credentials: dict, config: dict) -> dict[str, str]:
        if cloud(config) or not device_url(config):
            return {}
        problem = guarded_fetch.address_problem(device_url(config), purpose=guarded_fetch.GATEWAY)
        return {"device_url": problem} if problem else {}

    def webhook_max_bytes(self) -> int:
        return settings.SMS_GATEWAY_WEBHOOK_MAX_BYTES  # an MMS's pictures arrive inline, base64

    # --- the session -------------------------------------------------------------------------
    def connect(self, account) -> list:
        url = account.webhook_urls()["inbound"]
        for event in SMS_EVENTS:
            call(account, "POST", "/webhooks", json_body={"id": webhook_id(account, event), "url": url, "event": event})
        refused = []
        for event in MMS_EVENTS:
            try:
                call(account, "POST", "/webhooks", json_body={"id": webhook_id(account, event), "url": url, "event": event})
            except ProviderError as exc:  # an app too old to know the event
                logger.info("SMS gateway of account %s refused the %s webhook: %s", account.pk, event, exc)
                refused.append(event)
        reason = "webhooks registered on the SMS gateway"
        if refused:
            reason += f"; the phone refused {', '.join(refused)}: {MMS_ADVICE}"
        return [ConnectionChanged(status="connected", phone=account.phone_number, reason=reason)]

    def disconnect(self, account) -> None:
        for event in EVENTS:
            call(account, "DELETE", f"/webhooks/{webhook_id(account, event)}", ok_statuses=(404,))

    def health(self, account) -> Health:
        try:
            listed = GATEWAY.json(call(account, "GET", "/webhooks")) or []
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc), checks=[("SMS gateway reachable", False, str(exc))])
        registered = {w.get("event") for w in listed if isinstance(w, dict) and str(w.get("id", "")).startswith(f"whatsnap-{account.pk}-")}
        missing = [e for e in SMS_EVENTS if e not in registered]
        missing_mms = [e for e in MMS_EVENTS if e not in registered]
        advice = f"Reconnect the account to register: {', '.join(missing)}" if missing else ""
        detail = "SMS gateway reachable" + (f"; webhooks missing: {', '.join(missing)}" if missing else ", webhooks registered.")
        return Health(
            ok=not missing,
            detail=detail + (f" Picture messages (MMS) are not received: {MMS_ADVICE}." if missing_mms else ""),
            checks=[("SMS gateway reachable", True, ""), ("webhooks registered", not missing, advice),
                    ("picture messages (MMS) webhooks registered", not missing_mms, MMS_ADVICE if missing_mms else "")],
        )

    # --- sending -------------------------------------------------------------------------------
    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str, reply_to: str = "") -> SendResult:
        if media:  # SMS carries text only: send the links
            text = "\n".join([text, *(m["url"] for m in media if m.get("url"))]).strip()
        body = {"textMessage": {"text": text}, "phoneNumbers": [to], "id": idempotency_key}
        # POST /messages: the cloud's singular /message is deprecated (android-sms-gateway/server:
        # internal/sms-gateway/handlers/3rdparty.go); a phone's local server has /messages since
        # app 1.28 (localserver/WebService.kt) and an older one answers 404 to it: then /message.
        local = not cloud(account.config)
        response = call(account, "POST", "/messages", json_body=body, ok_statuses=(409, 404) if local else (409,))
        if response.status_code == 404:
            response = call(account, "POST", "/message", json_body=body, ok_statuses=(409,))
        if response.status_code == 409:
            # The gateway already holds a message with this id: an earlier attempt got
            # through. Count it as sent; never send a second copy.
            logger.info("SMS gateway already has message %s; not sending it again", idempotency_key)
            return SendResult(provider_id=idempotency_key, status="sent")
        answer = decoded(response)
        state = answer.get("state", "Pending") if isinstance(answer, dict) else "Pending"
        if state == "Failed":
            raise ProviderError("The phone reported the SMS as failed.", transient=False)
        return SendResult(provider_id=idempotency_key, status=STATE_STATUS.get(state, "queued"))

    # --- webhooks ------------------------------------------------------------------------------
    def parse_webhook(self, account, request) -> list:
        webhooks.verify(account, request)
        return webhooks.parse_envelope(json_envelope(request))

    def parse_envelope(self, account, envelope: dict) -> list:
        return webhooks.parse_envelope(envelope)
