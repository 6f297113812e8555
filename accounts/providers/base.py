"""The provider contract: every messaging backend is one module implementing Provider.

Webhook parsing returns normalised events; verification happens inside parse_webhook and a
bad signature raises WebhookForbidden before anything is stored."""
import hashlib
import hmac
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime

from django import forms
from django.conf import settings
from django.http import JsonResponse
from django.utils import timezone


# --- normalised events ---------------------------------------------------------------------
@dataclass(frozen=True)
class QrUpdated:
    qr: str  # the payload to encode in the QR image
    pairing_code: str = ""
    expires_in: int = 30


@dataclass(frozen=True)
class ConnectionChanged:
    status: str  # one of Account.Status
    phone: str = ""  # E.164 of the linked number, when the backend says it
    reason: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """A message in one of the account's chats. Usually the contact wrote it; with from_me the
    account's own phone/Mac sent it (typed on the device, or WhatSnap's own send echoing back:
    filing tells the two apart by provider id)."""
    provider_id: str
    # The contact's phone or handle as the platform gives it: the sender, or for from_me the
    # chat's other party. '' when WhatsApp names the person only by a LID (see sender_lid).
    from_phone: str
    name: str
    text: str
    at: datetime
    media: tuple[dict, ...] = ()
    group_id: str = ""  # WhatsApp group jid / iMessage group chat guid; the sender is then the participant
    group_name: str = ""
    from_me: bool = False
    sender_lid: str = ""  # WhatsApp's hidden id of the person ('12345@lid'), when the engine gives one
    reply_to: str = ""  # provider id of the message it quotes
    quoted_text: str = ""  # the quoted message's text as the platform shows it (the original may be unknown)
    history: bool = False  # imported from the gateway's history on connect: no routing, auto-reply or GHL


@dataclass(frozen=True)
class Reaction:
    """An emoji reaction on an earlier message (target_id); emoji '' removes the reaction."""
    provider_id: str  # the reaction's own id, or target + who + emoji when the platform has none
    target_id: str
    emoji: str
    at: datetime
    from_me: bool = False  # the account's own phone reacted
    from_phone: str = ""  # who reacted, when not from_me (a group participant, the contact)
    sender_lid: str = ""
    chat: str = ""  # the chat it happened in, as the account sees it (see MessageEdited)


@dataclass(frozen=True)
class MessageEdited:
    """Only a message's author may edit or delete it, and a forged one must not rewrite someone
    else's words: say who did it. from_me: the account's own phone (True), the contact or a group
    member (False), or None when the backend cannot tell (then it is kept unfiled). chat: the
    chat it arrived in as the account sees it (the contact's phone, handle or LID, or the group
    id) — required: the target must be a message of that chat. by: the group member who did it
    (phone or LID) — required for a group's messages."""
    provider_id: str  # the edit's own id (dedupe); target + text hash when the platform has none
    target_id: str
    text: str
    at: datetime
    from_me: bool | None = None
    by: str = ""
    chat: str = ""


@dataclass(frozen=True)
class MessageDeleted:
    """A message deleted for everyone (revoked / unsent); from_me, by and chat as for MessageEdited."""
    target_id: str
    at: datetime
    from_me: bool | None = None
    by: str = ""
    chat: str = ""


@dataclass(frozen=True)
class ChatEvent:
    """Something that happened in a group chat that is not a message (members joined or left,
    renamed): shown in the thread, no unread bump, no reopen, no GHL message."""
    provider_id: str
    group_id: str
    text: str
    at: datetime
    group_name: str = ""


@dataclass(frozen=True)
class PhoneIdentified:
    """The gateway told us the phone number behind a WhatsApp LID: the LID's contact becomes
    (or merges into) the phone's contact."""
    lid: str
    phone: str
    name: str = ""


@dataclass(frozen=True)
class Unfiled:
    """A verified webhook WhatSnap does not file (an event type it does not handle, a payload it
    cannot read yet). Kept with the reason and the whole envelope, so an admin can re-run it
    through Provider.parse_envelope() after an upgrade. `key` dedupes redeliveries."""
    reason: str
    envelope: dict
    key: str = ""


@dataclass(frozen=True)
class Ignored:
    """A webhook that by nature carries nothing new (a keep-alive, an ack that the message is
    still queued on the phone, key housekeeping between the account's own devices): answered,
    logged at debug, not stored. Anything else a backend does not file is Unfiled; a parse that
    returns no event at all is kept unfiled by the webhook view."""
    reason: str


@dataclass(frozen=True)
class DeliveryStatus:
    provider_id: str
    status: str  # queued|sent|delivered|read|failed
    error: str = ""


# --- errors ----------------------------------------------------------------------------------
class WebhookForbidden(Exception):
    """Signature / shared secret missing or wrong: answer 403, store nothing."""


class WebhookMalformed(Exception):
    """Verified but unparseable payload: answer 400 with the reason, store nothing."""


def require_url_secret(account, request) -> None:
    """Backends whose webhooks are unsigned (Evolution, BlueBubbles) are accepted only with the
    account's own secret in the URL WhatSnap gave them (`?secret=`)."""
    secret = request.GET.get("secret", "")
    if not secret or not hmac.compare_digest(secret.encode(), account.webhook_secret.encode()):
        raise WebhookForbidden("missing or wrong ?secret= in the webhook URL")


def edit_id(target: str, text: str) -> str:
    """An edit's own id when the platform gives none: the edited message and a hash of its new
    text (the same edit told twice is one edit; a second edit is another)."""
    return f"{target}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def json_envelope(request) -> dict:
    """A verified webhook's body as a JSON object; WebhookMalformed otherwise."""
    try:
        envelope = json.loads(request.body)
    except ValueError:
        raise WebhookMalformed("body is not JSON") from None
    if not isinstance(envelope, dict):
        raise WebhookMalformed("body is not a JSON object")
    return envelope


class ProviderError(Exception):
    """A backend call failed. transient=True means retrying later may succeed; ambiguous=True
    means the request may have reached the backend (no answer in time), so a send must not be
    repeated by itself (it could go out twice)."""

    def __init__(self, message: str, *, transient: bool = True, ambiguous: bool = False):
        super().__init__(message)
        self.transient = transient
        self.ambiguous = ambiguous


def gateway_resource_claim(account) -> bool:
    """Record, before asking a shared gateway to create the account's session, that WhatSnap
    asked for it. Returns True when it had been claimed before: only then may a session found
    existing under that name be adopted (it is this account's own, e.g. a create whose answer
    was lost); a name that exists but was never claimed here belongs to someone else."""
    claimed_now = type(account).objects.filter(pk=account.pk, gateway_claimed_at__isnull=True).update(
        gateway_claimed_at=timezone.now())
    return claimed_now == 0


def gateway_resource_foreign(service: str, name: str) -> "ProviderError":
    return ProviderError(
        f"{service} already has a session named {name} that WhatSnap did not create for this account; "
        "it is not adopted. Ask the gateway's operator to remove it, or delete and re-add this account.",
        transient=False)


@dataclass(frozen=True)
class SendResult:
    provider_id: str
    status: str = "sent"  # the furthest state the backend already reports (sandbox: delivered)


@dataclass
class Health:
    ok: bool
    detail: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (name, ok, advice)


class Provider(ABC):
    """The contract every backend implements (an abstract class: a backend missing one of
    these methods cannot be instantiated, so it fails when loaded, not mid-request)."""

    key: str = ""
    label: str = ""  # how the API and the admin name it
    kinds: tuple[str, ...] = ()  # Account.Kind values this backend can serve
    # A stand-in for the real backends of its kinds (the sandbox): offered after them, never
    # a kind's default.
    simulated: bool = False
    # The operator settings it cannot work without (a gateway's base URL): while one is unset
    # the Add Account form does not offer it as the default, and refuses it.
    operator_settings: tuple[str, ...] = ()
    # True when the backend refuses a second message with the same idempotency key: then a
    # send whose answer was lost (a timeout) is simply tried again, it cannot go out twice
    idempotent_sends: bool = False
    # What a client (API, Add Account form) may put in an account's config and credentials, and
    # the values a config key may take (None: any text). Everything else in those dicts is
    # written by WhatSnap itself (gateway tokens, pool numbers, link nonces) and never settable.
    settable_config: dict[str, tuple[str, ...] | None] = {}
    settable_credentials: tuple[str, ...] = ()
    required_credentials: tuple[str, ...] = ()  # what a client must give to add an account
    # The Add Account form: how its backend choice names this backend, the message for a field
    # it requires left empty, and the form field a setting of address_problems() was typed in.
    choice_label: str = ""
    form_required_message: str = "Required to connect to your device."
    form_field_of_setting: dict[str, str] = {}
    # True when it can list the numbers an account could use (the form's "Load my numbers").
    lists_numbers: bool = False
    # The account page's card of what this backend recorded about the account (account_card()).
    card_template: str = ""

    @abstractmethod
    def connect(self, account) -> list:
        """Start or resume the session; returns the events it produced (QR, connection)."""

    def renew_qr(self, account) -> list:
        """A fresh QR code for a session still waiting to be linked (the last one expired).
        By default the session is simply resumed with connect()."""
        return self.connect(account)

    def media_request(self, account, item: dict) -> dict | None:
        """How to fetch an attachment for the inbox, as whatsnap.guarded_fetch.Target fields
        (url; auth/params/headers when the backend wants credentials, which go to that origin
        only; trusted=True for an operator-configured origin; purpose "gateway" for the
        person's own device), or None when there is nothing to fetch. By default its URL, as
        an attachment anyone may have given."""
        url = item.get("url") or ""
        return {"url": url} if url.startswith(("http://", "https://")) else None

    def address_problems(self, *, credentials: dict, config: dict) -> dict[str, str]:
        """The addresses a person typed that this backend would call (their device) and may
        not be called: setting name -> short reason. Checked when an account is added."""
        return {}

    @abstractmethod
    def disconnect(self, account) -> None:
        """End the session on the backend's side."""

    @abstractmethod
    def health(self, account) -> Health:
        """Is the backend reachable and are the credentials accepted (read-only)."""

    @abstractmethod
    def send(self, account, *, to: str, text: str, media: list[dict] | None = None, idempotency_key: str,
             reply_to: str = "") -> SendResult:
        """Send once per idempotency_key; return the provider's message id and status.
        reply_to: the provider id of a message this one quotes (backends that cannot quote
        send it as a plain message). Raise ProviderError on failure."""

    @abstractmethod
    def parse_webhook(self, account, request) -> list:
        """Verify a webhook (raise WebhookForbidden / WebhookMalformed) and normalise it.
        Every event it accepts but does not file comes back as Unfiled, with the reason."""

    def parse_envelope(self, account, envelope: dict) -> list:
        """Normalise a webhook body that was verified when it arrived (an Unfiled event re-run
        by an admin after an upgrade). Backends whose parse_webhook keeps Unfiled events
        implement it; the default says it cannot."""
        raise WebhookMalformed(f"{self.label} cannot re-read a stored webhook")

    # --- what a backend can do besides sending (capabilities; the inbox offers only these) ---
    supports_reactions: bool = False
    supports_read_receipts: bool = False
    supports_history: bool = False
    # What one message may carry (accounts/providers/media.py MediaLimits); None: text only,
    # so files chosen in the composer go as signed links (media.LINKS_ONLY).
    media_limits = None

    def react(self, account, *, to: str, target_id: str, target_from_me: bool, emoji: str) -> None:
        """React with emoji ('' removes our reaction) to the message target_id in the chat `to`
        (target_from_me: the message was sent by the account). ProviderError on failure."""
        raise ProviderError(f"{self.label} cannot send reactions.", transient=False)

    def mark_read(self, account, *, to: str, provider_ids: list[str]) -> None:
        """Tell the platform the contact's messages in the chat `to` were read (blue ticks)."""
        raise ProviderError(f"{self.label} cannot mark messages read.", transient=False)

    def history(self, account, *, since: datetime) -> list:
        """The messages (InboundMessage with history=True, from_me for our side) the gateway
        still holds from `since` on, oldest first."""
        raise ProviderError(f"{self.label} cannot import history.", transient=False)

    def message_id_core(self, provider_id: str) -> str:
        """The part of a provider message id that names the message whatever chat address it was
        written with ('' when the whole id does): WAHA's `true_<chat>_<id>` names one chat by a
        LID in one id and by the phone in another. Used only when an exact id finds nothing."""
        return ""

    def resolve_lid(self, account, lid: str) -> str:
        """The phone number (E.164) behind a WhatsApp LID if the gateway knows it, else ''."""
        return ""

    def webhook_max_bytes(self) -> int:
        """Larger webhook bodies are refused (413) before they are parsed."""
        return settings.WEBHOOK_MAX_BYTES

    def webhook_answer(self, *, accepted: int, new: int):
        """The HTTP answer to an accepted webhook (what the backend expects to read)."""
        return JsonResponse({"accepted": accepted, "new": new})

    def setup_webhook_url(self, account) -> str | None:
        """The URL a person must enter on the device, for backends whose webhooks are not
        registered by connect() (it may carry the account's shared secret)."""
        return None

    # --- adding an account -----------------------------------------------------------------
    def missing_settings(self) -> list[str]:
        return [name for name in self.operator_settings if not getattr(settings, name, "")]

    def settings_problems(self, *, kind: str, phone_number: str, credentials: dict, config: dict) -> dict[str, str]:
        """What is wrong with a new account's settings as a client gave them (the API), beyond
        required_credentials and address_problems(): field -> message."""
        return {}

    def form_fields(self) -> dict[str, forms.Field]:
        """The Add Account form's fields for this backend's credentials and config, new ones on
        every call (names unique across backends: one form may ask for several)."""
        return {}

    def form_required(self, data: dict) -> tuple[str, ...]:
        """The form fields that must be filled in, given the form's cleaned data."""
        return ()

    def form_problems(self, data: dict) -> dict[str, str]:
        """What the form's cleaned data lacks or has inconsistent: field -> message."""
        return {name: self.form_required_message for name in self.form_required(data) if not data.get(name)}

    def form_settings(self, data: dict) -> tuple[dict, dict]:
        """(credentials, config) from the form's cleaned data; secrets go to credentials."""
        return {}, {}

    def verify(self, *, credentials: dict, config: dict, phone: str = "") -> str:
        """Check credentials and number with the backend before anything is saved, changing
        nothing (raise ProviderError); returns the number the account will use."""
        return phone

    def list_numbers(self, *, credentials: dict, config: dict) -> list[str]:
        """The numbers an account with these credentials could use (when lists_numbers);
        ProviderError when there are none to offer."""
        raise ProviderError(f"{self.label} cannot list the numbers of an account; type the number instead.", transient=False)

    # --- the account page ----------------------------------------------------------------------
    def account_card(self, account) -> dict | None:
        """What card_template shows about the account, as `card` (None: no card)."""
        return None
