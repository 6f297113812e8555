"""iMessage through a Mac running BlueBubbles Server (its REST API and webhooks).

The account's credentials hold the server URL and password; every call authenticates with
`?password=`. BlueBubbles webhooks are configured on the server itself and sent unsigned,
once, without retry: we accept them only with the account's secret in our URL (`?secret=`),
which is the URL to paste into the server's webhook settings (see `webhook_url`).

What the Mac reports is filed whole: messages from contacts and those typed on the Mac or
iPhone itself (isFromMe), tapbacks as reactions, group system items (members added / removed /
left, renamed) as conversation events, edits and unsends; any other event is kept unfiled with
its reason. Quoted replies, reactions and read receipts go out through the server's Private
API (the account's send_method "private-api"); history is read with /api/v1/message/query.

The package: client (calls to the server), messages (its serialised message as our events),
webhooks (the secret check and the event types), provider (the backend)."""
from accounts.providers.bluebubbles.client import webhook_url
from accounts.providers.bluebubbles.provider import BlueBubblesProvider

__all__ = ["BlueBubblesProvider", "webhook_url"]
