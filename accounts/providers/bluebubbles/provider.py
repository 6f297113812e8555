"""The BlueBubbles backend: the account's Mac (see the package's docstring)."""
from datetime import datetime

from django import forms

from accounts.providers.base import (
    ConnectionChanged,
    Health,
    InboundMessage,
    Provider,
    ProviderError,
    SendResult,
    json_envelope,
)
from accounts.providers.bluebubbles import webhooks
from accounts.providers.bluebubbles.client import (
    HISTORY_LIMITS,
    call,
    chat_guid,
    chat_path,
    require_private_api,
    uses_private_api,
    webhook_url,
)
from accounts.providers.bluebubbles.messages import TAPBACK_CODES, TAPBACKS, message_events
from whatsnap import guarded_fetch

HISTORY_PAGE = 500  # the server's /message/query takes up to 1000
HISTORY_MAX_PAGES = 20  # at most 10,000 messages per import
# what the server's /message/react accepts, by the emoji an agent picks
REACTION_NAMES = {emoji.replace("\ufe0f", ""): name for name, emoji in TAPBACKS.items()}
SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}
WEBHOOK_EVENTS = "new-message, updated-message, message-send-error, participant-added, participant-removed, " \
                 "participant-left, group-name-change"


class BlueBubblesProvider(Provider):
    key = "bluebubbles"
    label = "iMessage (BlueBubbles on a Mac)"
    kinds = ("imessage",)
    settable_config = {"service": ("iMessage", "SMS"), "send_method": ("apple-script", "private-api")}
    settable_credentials = ("server_url", "password")
    required_credentials = ("server_url", "password")
    form_field_of_setting = {"server_url": "bluebubbles_url"}
    # Offered for every iMessage account; they work only when the account sends through the
    # Private API (config send_method "private-api"): react() and mark_read() raise a final
    # ProviderError saying so for an AppleScript account.
    supports_reactions = True
    supports_read_receipts = True
    supports_history = True

    def form_fields(self) -> dict[str, forms.Field]:
        return {
            "bluebubbles_url": forms.URLField(
                required=False, label="BlueBubbles server URL", help_text="As shown in BlueBubbles Server, e.g. https://mac.example.com:1234"
            ),
            "bluebubbles_password": forms.CharField(required=False, label="BlueBubbles server password", widget=forms.PasswordInput),
        }

    def form_required(self, data: dict) -> tuple[str, ...]:
        return ("bluebubbles_url", "bluebubbles_password")

    def form_settings(self, data: dict) -> tuple[dict, dict]:
        return {"server_url": data["bluebubbles_url"], "password": data["bluebubbles_password"]}, {}

    def setup_webhook_url(self, account) -> str:
        return webhook_url(account)

    def address_problems(self, *, credentials: dict, config: dict) -> dict[str, str]:
        server = (credentials.get("server_url") or "").strip()
        problem = guarded_fetch.address_problem(server, purpose=guarded_fetch.GATEWAY) if server else ""
        return {"server_url": problem} if problem else {}

    def media_request(self, account, item: dict) -> dict | None:
        """Attachments stay on the Mac: GET /api/v1/attachment/{guid}/download (password auth)."""
        guid = item.get("attachment_guid")
        server = (account.credentials.get("server_url") or "").rstrip("/")
        if not guid or not server:
            return super().media_request(account, item)
        return {"url": f"{server}/api/v1/attachment/{guid}/download", "purpose": guarded_fetch.GATEWAY,
                "params": {"password": account.credentials.get("password", "")}}

    # --- the session -------------------------------------------------------------------------
    def connect(self, account) -> list:
        # Nothing to register remotely: the server's webhooks are set in its own settings.
        call(account, "GET", "/api/v1/ping")
        return [ConnectionChanged(status="connected", phone=account.phone_number, reason="BlueBubbles server answered ping")]

    def disconnect(self, account) -> None:
        return None

    def health(self, account) -> Health:
        try:
            call(account, "GET", "/api/v1/ping")
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc), checks=[("BlueBubbles server reachable", False, str(exc))])
        advice = (f"BlueBubbles Server -> API & Webhooks must hold the account's webhook URL, with its ?secret=, "
                  f"for the events {WEBHOOK_EVENTS} (others are kept as unfiled events).")
        return Health(ok=True, detail="BlueBubbles server answered ping.", checks=[("BlueBubbles server reachable", True, advice)])

    # --- sending -------------------------------------------------------------------------------
    def send(self, account, *, to: str, text: str, media=None, idempotency_key: str, reply_to: str = "") -> SendResult:
        if media:  # attachments need a multipart upload of the file; send the links instead
            text = "\n".join([text, *(m["url"] for m in media if m.get("url"))]).strip()
        body = {
            "chatGuid": chat_guid(account, to),
            "message": text,
            "tempGuid": idempotency_key,  # BlueBubbles refuses a reused tempGuid while it is queued
            "method": account.config.get("send_method", "apple-script"),
        }
        if reply_to and uses_private_api(account):
            # an inline reply; the server would switch an AppleScript send to the Private API
            # for it, which such an account lacks: there the reply goes as a plain message
            body.update(selectedMessageGuid=reply_to, partIndex=0)
        data = call(account, "POST", "/api/v1/message/text", json_body=body).get("data") or {}
        # The message's guid: what the server's new-message webhook of this send reports too.
        return SendResult(provider_id=str(data.get("guid") or idempotency_key), status="sent")

    def react(self, account, *, to: str, target_id: str, target_from_me: bool, emoji: str) -> None:
        require_private_api(account, "Reacting to a message")
        chat = chat_guid(account, to)
        name = _tapback_name(emoji) if emoji else _removal(account, chat, target_id)
        if name:
            call(account, "POST", "/api/v1/message/react",
                 json_body={"chatGuid": chat, "selectedMessageGuid": target_id, "reaction": name, "partIndex": 0})

    def mark_read(self, account, *, to: str, provider_ids: list[str]) -> None:
        require_private_api(account, "Marking messages read")
        call(account, "POST", f"/api/v1/chat/{chat_path(chat_guid(account, to))}/read")

    def history(self, account, *, since: datetime) -> list:
        """The messages of every chat from `since` on, oldest first, paged (bounded)."""
        found = []
        for page in range(HISTORY_MAX_PAGES):
            body = {"after": int(since.timestamp() * 1000), "with": ["chat", "handle", "attachment"], "sort": "ASC",
                    "limit": HISTORY_PAGE, "offset": page * HISTORY_PAGE}
            answer = call(account, "POST", "/api/v1/message/query", json_body=body, limits=HISTORY_LIMITS)
            batch = [m for m in answer.get("data") or () if isinstance(m, dict) and m.get("guid")]
            for data in batch:
                found.extend(e for e in message_events(data, {"type": "history", "data": data}, history=True)
                             if isinstance(e, InboundMessage))  # tapbacks and group items are not messages
            total = (answer.get("metadata") or {}).get("total")
            if len(batch) < HISTORY_PAGE or (isinstance(total, int) and (page + 1) * HISTORY_PAGE >= total):
                break
        return found

    # --- webhooks ------------------------------------------------------------------------------
    def parse_webhook(self, account, request) -> list:
        webhooks.verify(account, request)
        return webhooks.parse_envelope(json_envelope(request))

    def parse_envelope(self, account, envelope: dict) -> list:
        return webhooks.parse_envelope(envelope)


def _tapback_name(emoji: str) -> str:
    plain = "".join(c for c in emoji if c != "\ufe0f" and c not in SKIN_TONES)
    if plain not in REACTION_NAMES:
        raise ProviderError(f"iMessage tapbacks are {' '.join(TAPBACKS.values())}; {emoji} cannot be sent.", transient=False)
    return REACTION_NAMES[plain]


def _removal(account, chat: str, target_id: str) -> str:
    """The server removes a named tapback ("-love"): ours on the message is looked up (the
    latest tapback the account put on it); none left means nothing to remove."""
    body = {"chatGuid": chat, "limit": 1, "sort": "DESC", "where": [
        {"statement": "message.associated_message_guid LIKE :target", "args": {"target": f"%{target_id}"}},
        {"statement": "message.is_from_me = :me", "args": {"me": 1}},
    ]}
    latest = (call(account, "POST", "/api/v1/message/query", json_body=body).get("data") or [None])[0]
    kind = str((latest or {}).get("associatedMessageType") or "")
    kind = TAPBACK_CODES.get(int(kind), kind) if kind.isdigit() else kind  # older servers: the number
    return f"-{kind}" if kind in TAPBACKS else ""
