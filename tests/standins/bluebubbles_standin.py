"""A loopback stand-in for BlueBubbles Server (iMessage on a Mac).

Auth by `?password=` (alias `guid`); GET /api/v1/ping; POST /api/v1/message/text
`{chatGuid, message, tempGuid, method}` answering `{status, message, data: <message>}`.
Webhook bodies are `{type, data}` with the server's message shape (epoch-ms dates)."""
import secrets
import time

from tests.standins.evolution_standin import LoopbackStandIn, Raw, Recorded

UNAUTHORIZED = {
    "status": 401,
    "message": "You are not authorized to access this resource",
    "error": {"type": "Authentication Error", "message": "Invalid password"},
}


def _now_ms() -> int:
    return int(time.time() * 1000)


def message_guid() -> str:
    return secrets.token_hex(16).upper()


class BlueBubblesStandIn(LoopbackStandIn):
    def __init__(self, *, password: str = "mac-password"):
        super().__init__()
        self.password = password
        self.sent: list[dict] = []
        self.attachments: dict[str, tuple[bytes, str]] = {}  # guid -> (file, mime type)

    def route(self, request: Recorded):
        if (request.query.get("password") or request.query.get("guid")) != self.password:
            return 401, UNAUTHORIZED
        if request.method == "GET" and request.path == "/api/v1/ping":
            return 200, {"status": 200, "message": "Ping received!", "data": "pong"}
        if request.method == "POST" and request.path == "/api/v1/message/text":
            return self._send_text(request.json)
        if request.method == "GET" and request.path.startswith("/api/v1/attachment/") and request.path.endswith("/download"):
            guid = request.path.split("/")[4]
            if guid not in self.attachments:
                return 404, {"status": 404, "message": "Attachment does not exist in disk!"}
            return 200, Raw(*self.attachments[guid])
        return 404, {"status": 404, "message": "Not Found", "error": {"type": "Not Found", "message": request.path}}

    def _send_text(self, body: dict):
        chat, temp = body.get("chatGuid", ""), body.get("tempGuid")
        method = body.get("method", "apple-script")
        if not chat or ";" not in chat or body.get("message") is None:
            return 400, {"status": 400, "message": "Bad Request", "error": {"type": "Validation Error", "message": "chatGuid and message are required"}}
        if method == "apple-script" and not temp:
            return 400, {"status": 400, "message": "Bad Request", "error": {"type": "Validation Error", "message": "A tempGuid is required when sending via AppleScript"}}
        if any(m["tempGuid"] == temp for m in self.sent):
            return 400, {"status": 400, "message": "Bad Request", "error": {"type": "Validation Error", "message": f"Message is already queued to be sent (Temp GUID: {temp})!"}}
        address = chat.split(";-;", 1)[-1]
        message = self.message(guid=message_guid(), text=body["message"], address=address, is_from_me=True, chat=chat)
        message["tempGuid"] = temp
        self.sent.append(message)
        return 200, {"status": 200, "message": "Message sent!", "data": message}

    # --- webhook payloads ------------------------------------------------------------------
    @staticmethod
    def message(
        *,
        guid: str | None = None,
        text: str = "hello",
        address: str = "+14155550123",
        is_from_me: bool = False,
        date_created: int | None = None,
        chat: str | None = None,
        chat_name: str = "",
        attachments: list | None = None,
    ) -> dict:
        chat = chat or f"iMessage;-;{address}"
        return {
            "originalROWID": 1234,
            "guid": guid or message_guid(),
            "text": text,
            "attributedBody": None,
            "handle": {"originalROWID": 12, "address": address, "service": "iMessage", "country": "us", "uncanonicalizedId": None},
            "handleId": 12,
            "otherHandle": 0,
            "attachments": attachments or [],
            "subject": None,
            "error": 0,
            "dateCreated": date_created or _now_ms(),
            "dateRead": None,
            "dateDelivered": None,
            "isFromMe": is_from_me,
            "hasDdResults": False,
            "isArchived": False,
            "itemType": 0,
            "groupTitle": None,
            "groupActionType": 0,
            "balloonBundleId": None,
            "associatedMessageGuid": None,
            "associatedMessageType": None,
            "expressiveSendStyleId": None,
            "threadOriginatorGuid": None,
            "hasPayloadData": False,
            "chats": [{"originalROWID": 3, "guid": chat, "style": 43 if ";+;" in chat else 45, "chatIdentifier": chat.split(";")[-1], "isArchived": False, "displayName": chat_name}],
        }

    def new_message(self, **kwargs) -> dict:
        return {"type": "new-message", "data": self.message(**kwargs)}

    def updated_message(self, guid: str, *, delivered: bool = True, read: bool = False) -> dict:
        original = next((m for m in self.sent if m["guid"] == guid), None) or self.message(guid=guid, is_from_me=True)
        data = {**original, "dateDelivered": _now_ms() if delivered or read else None, "dateRead": _now_ms() if read else None}
        return {"type": "updated-message", "data": data}

    def send_error(self, guid: str, *, error: int = 4) -> dict:
        original = next((m for m in self.sent if m["guid"] == guid), None) or self.message(guid=guid, is_from_me=True)
        return {"type": "message-send-error", "data": {**original, "error": error}}
