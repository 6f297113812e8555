"""Twilio Programmable Messaging through the official SDK.

Connecting checks the credentials (Account SID + Auth Token, or an API Key SID + Secret for
the REST calls), finds the number among the account's IncomingPhoneNumbers — or, with a
Messaging Service, in the service's sender pool — and points its inbound webhook and status
callback at our URLs (built from PUBLIC_BASE_URL). For a Messaging Service it also reads the
US A2P 10DLC campaign status; pool numbers and that status are kept in `account.config`.

Inbound and status webhooks are form-encoded and signed with X-Twilio-Signature (HMAC-SHA1 of
the public URL + sorted params with the account's Auth Token — Twilio signs with the Auth
Token even when the REST calls use an API key, so the token is always required). The URL is
rebuilt from PUBLIC_BASE_URL so the check holds behind a proxy. The account id is in our URL,
so the signature is checked with that account's own token whatever number of a Messaging
Service pool the message came to.

The package: setup (reading the Twilio account before anything is changed) and provider (the
backend)."""
from accounts.providers.twilio.provider import TwilioProvider

__all__ = ["TwilioProvider"]
