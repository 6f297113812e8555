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
`X-Webhook-Hmac-Algorithm: sha512` (WAHA 2024.11.5 and later; Core before that signs nothing).
Nothing unsigned or wrongly signed is accepted, and the refusal says why and what to change.

Envelopes are `{id, event, session, me, payload, engine, ...}`. Sessions subscribe to
`message.any` (every message, the ones the account's own phone sends too), `message.ack`,
`message.reaction`, `message.edited`, `message.revoked` and `session.status`; what is verified
but not filed comes back Unfiled with the reason. Payloads differ between WAHA's engines
(WEBJS: whatsapp-web.js, NOWEB: Baileys, GOWS: whatsmeow) in `_data`, and in how they name a
person: by phone JID, by LID, or both (jids.py, messages.py say which field is which).

Besides sending: quoting (`reply_to`), reactions (PUT /api/reaction), read receipts
(POST /api/sendSeen), history (chats overview + messages) and the phone behind a LID
(GET /api/{session}/lids/{lid}).

The package: client (calls to the gateway and what its answers mean), webhooks (signature
check and event dispatch), messages (a WAHA message -> InboundMessage, for webhooks and
history), amendments (reactions, edits, deletions), jids (ids and who is who), history,
provider (the backend's session, sends and the rest of the contract)."""
from accounts.providers.waha.provider import WahaProvider

__all__ = ["WahaProvider"]
