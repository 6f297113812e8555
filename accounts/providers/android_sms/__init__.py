"""SMS through an Android phone running SMS Gateway for Android (capcom6).

Two modes, same API: `local` talks to the phone itself (config device_url, e.g.
http://192.168.1.20:8080: a person's input, so called through whatsnap.guarded_fetch, which
allows a LAN address only with GATEWAY_ALLOW_PRIVATE_URLS); `cloud` talks to the operator's
SMS_GATEWAY_CLOUD_BASE_URL, which relays to the phone. Both use Basic auth with the
username/password shown in the app. Connect registers our webhook for the SMS events and the
picture-message (MMS) events (fixed ids, so reconnecting replaces rather than adds); sends go
to POST /messages with our message id (a second one with the same id is answered 409).

Webhooks come straight from the phone, signed (see webhooks); text messages, picture messages
with their attachments and the statuses of our sends are filed, anything else is kept unfiled.

The package: client (calls to the phone or the relay), webhooks (signature and events),
provider (the backend)."""
from accounts.providers.android_sms.provider import AndroidSmsProvider

__all__ = ["AndroidSmsProvider"]
