"""WhatsApp through a self-hosted Evolution API v2 gateway (WhatsApp Web, QR pairing).

One gateway (EVOLUTION_API_BASE_URL) serves every account; each account is one gateway
instance named by WhatSnap (`Account.gateway_resource`, random, unique across locations),
created on first connect with its webhook pointing back at us; an instance of that name that
WhatSnap did not ask to create for this account is never adopted. Calls carry the global key in
the `apikey` header. The instance's own token is kept when the create answers with it, and read
back from the gateway (GET /instance/fetchInstances) when the instance already existed or the
create's answer was lost.

Webhooks are not signed. They are authenticated by the account's secret in our URL
(`?secret=`); when the envelope carries an `apikey` and WhatSnap holds the instance token, it
must be the global key or that token. Every event is normalised: messages from the contact and
from the account's own phone (fromMe), people WhatsApp names only by a LID, quoted replies,
reactions, edits and deletions for everyone; what WhatSnap does not file comes back Unfiled with
its reason, and parse_envelope() reads a stored envelope again.

The package: gateway (calls, instance token), content (one WhatsApp message -> events),
webhooks (who may post, what each event means), chat (reactions, read receipts, history, LID
lookup), provider (the backend's session and sends)."""
from accounts.providers.evolution.gateway import GATEWAY, instance_name, webhook_url
from accounts.providers.evolution.provider import EvolutionProvider
from accounts.providers.evolution.webhooks import ACK_STATUS, WEBHOOK_EVENTS

__all__ = ["ACK_STATUS", "GATEWAY", "WEBHOOK_EVENTS", "EvolutionProvider", "instance_name", "webhook_url"]
