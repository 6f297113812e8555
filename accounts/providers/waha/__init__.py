"""WhatsApp through a self-hosted WAHA gateway (devlikeapro's WhatsApp HTTP API; WhatsApp Web,
QR or pairing-code linking).

One gateway (WAHA_API_BASE_URL) serves every account; each account is one WAHA session named
by WhatSnap (`Account.gateway_resource`: random, unique across locations; so WAHA Plus, which
runs many sessions, is needed: WAHA Core runs only `default`, which no tenant may claim).
connect() creates the session with its webhook pointing back at us, or, when WhatSnap created
it for this account before, updates it and starts it; a session of that name WhatSnap did not
ask to create for this account is never adopted. Calls carry
WAHA_API_KEY in the `X-Api-Key` header.

Webhooks are signed: the session's webhook is registered with an HMAC key (the account's
webhook secret) and WAHA sends `X-Webhook-Hmac` = hex HMAC-SHA512 of the raw body, with
`X-Webhook-Hmac-Algorithm: sha512`. Nothing unsigned or wrongly signed is accepted.

Envelopes are `{event, session, me, payload, engine, ...}`; we use `message` (incoming messages
only: our own sends and messages typed on the phone also arrive, marked fromMe),
`message.ack` (delivery receipts) and `session.status`. Payload shapes differ a little between
WAHA's engines (WEBJS, NOWEB, GOWS); the fields read here are the ones its docs give for all.

The package: client (calls to the gateway and what its answers mean), webhooks (signature
check and event mapping), provider (the backend's session and sends)."""
from accounts.providers.waha.provider import WahaProvider

__all__ = ["WahaProvider"]
