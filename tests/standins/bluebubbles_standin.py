"""A loopback stand-in for BlueBubbles Server (iMessage on a Mac).

Auth by `?password=` (alias `guid`); GET /api/v1/ping; POST /api/v1/message/text
`{chatGuid, message, tempGuid, method, selectedMessageGuid?}` answering `{status, message, data:
<message>}`; the Private API routes POST /api/v1/message/react and POST /api/v1/chat/{guid}/read
(answering the server's iMessage error while the Private API is off); POST
/api/v1/message/query (after / sort / limit <= 1000 / offset paging with `metadata.total`, or
`where` statements as the removal of a tapback uses them).

Webhook bodies are `{type, data}` with the server's MessageSerializer shape "for notification"
(BlueBubblesApp/bluebubbles-server: packages/server/src/server/api/serializers/MessageSerializer.ts;
epoch-ms dates; dateEdited / dateRetracted / partCount as on macOS Ventura and later)."""
import secrets
import time
from urllib.parse import unquote

from tests.standins.evolution_standin import LoopbackStandIn, Raw, Recorded

UNAUTHORIZED = {
    "status": 401,
    "message": "You are not authorized to access this resource",
    "error": {"type": "Authentication Error", "message": "Invalid password"},
}
# privateApiMiddleware.ts: checkPrivateApiStatus() failing, re-thrown as an IMessageError (500)
PRIVATE_API_OFF = {
    "status": 500,
    "message": "Please make sure you have completed the setup for the Private API, and your helper is connected!",
    "error": {"type": "iMessage Error", "message": "iMessage Private API is not enabled!"},
}
# MessageInterface.possibleReactions
REACTIONS = ("love", "like", "dislike", "laugh", "emphasize", "question")


def _now_ms() -> int:
    return int(time.time() * 1000)


def message_guid() -> str:
    return secrets.token_hex(16).upper()


def bad_request(text: str):
    return 400, {"status": 400, "message": "Bad Request", "error": {"type": "Validation Error", "message": text}}


class BlueBubblesStandIn(LoopbackStandIn):
    def __init__(self, *, password: str = "mac-password", private_api: bool = True):
        super().__init__()
        self.password = password
        self.private_api = private_api
        self.sent: list[dict] = []  # texts and tapbacks sent through the API
        self.history: list[dict] = []  # the Messages database, as /message/query reads it
        self.read_chats: list[str] = []
        self.attachments: dict[str, tuple[bytes, str]] = {}  # guid -> (file, mime type)

    def route(self, request: Recorded):
        if (request.query.get("password") or request.query.get("guid")) != self.password:
            return 401, UNAUTHORIZED
        path = request.path
        if request.method == "GET" and path == "/api/v1/ping":
            return 200, {"status": 200, "message": "Ping received!", "data": "pong"}
        if request.method == "POST" and path == "/api/v1/message/text":
            return self._send_text(request.json)
        if request.method == "POST" and path == "/api/v1/message/react":
            return self._react(request.json) if self.private_api else (500, PRIVATE_API_OFF)
        if request.method == "POST" and path.startswith("/api/v1/chat/") and path.endswith("/read"):
            if not self.private_api:
                return 500, PRIVATE_API_OFF
            self.read_chats.append(unquote(path[len("/api/v1/chat/"):-len("/read")]))
            return 200, {"status": 200, "message": "Successfully marked chat as read!"}
        if request.method == "POST" and path == "/api/v1/message/query":
            return self._query(request.json)
        if request.method == "GET" and path.startswith("/api/v1/attachment/") and path.endswith("/download"):
            guid = path.split("/")[4]
            if guid not in self.attachments:
                return 404, {"status": 404, "message": "Attachment does not exist in disk!"}
            return 200, Raw(*self.attachments[guid])
        return 404, {"status": 404, "message": "Not Found", "error": {"type": "Not Found", "message": path}}

    def _send_text(self, body: dict):
        chat, temp = body.get("chatGuid", ""), body.get("tempGuid")
        # messageValidator.ts: a reply (selectedMessageGuid) makes it a Private API send
        method = "private-api" if body.get("selectedMessageGuid") else body.get("method", "apple-script")
        if not chat or ";" not in chat or body.get("message") is None:
            return bad_request("chatGuid and message are required")
        if method == "apple-script" and not temp:
            return bad_request("A 'tempGuid' is required when sending via AppleScript")
        if method == "private-api" and not self.private_api:
            return 500, {**PRIVATE_API_OFF, "message": "Message Send Error"}
        if temp and any(m.get("tempGuid") == temp for m in self.sent):
            return bad_request(f"Message is already queued to be sent! (Temp GUID: {temp})")
        address = chat.split(";-;", 1)[-1]
        message = self.message(guid=message_guid(), text=body["message"], address=address, is_from_me=True, chat=chat,
                               thread_originator=body.get("selectedMessageGuid"))
        message["tempGuid"] = temp
        self.sent.append(message)
        return 200, {"status": 200, "message": "Message sent!", "data": message}

    def _react(self, body: dict):
        target, reaction = body.get("selectedMessageGuid"), body.get("reaction", "")
        if reaction.lstrip("-") not in REACTIONS or not body.get("chatGuid") or not target:
            return bad_request(f"reaction must be one of {', '.join(REACTIONS)} (or removed with -)")
        if not any(m["guid"] == target for m in [*self.sent, *self.history]):
            return bad_request("Selected message does not exist!")
        message = self.message(text="", is_from_me=True, chat=body["chatGuid"], associated_guid=f"p:0/{target}",
                               associated_type=reaction)
        self.sent.append(message)
        return 200, {"status": 200, "message": "Reaction sent!", "data": message}

    def _query(self, body: dict):
        limit, offset = int(body.get("limit") or 100), int(body.get("offset") or 0)
        if not 1 <= limit <= 1000:
            return bad_request("The limit must be between 1 and 1000")
        rows = [*self.history, *self.sent]
        for clause in body.get("where") or ():  # the two statements a tapback removal sends
            if clause["statement"].startswith("message.associated_message_guid LIKE"):
                rows = [m for m in rows if (m["associatedMessageGuid"] or "").endswith(clause["args"]["target"].lstrip("%"))]
            elif clause["statement"].startswith("message.is_from_me ="):
                rows = [m for m in rows if m["isFromMe"] == bool(clause["args"]["me"])]
            else:
                return bad_request(f"unexpected statement {clause['statement']}")
        rows = [m for m in rows if m["dateCreated"] >= int(body.get("after") or 0)]
        rows.sort(key=lambda m: m["dateCreated"], reverse=body.get("sort", "DESC") == "DESC")
        page = rows[offset:offset + limit]
        return 200, {"status": 200, "message": "Successfully fetched messages!", "data": page,
                     "metadata": {"offset": offset, "limit": limit, "total": len(rows), "count": len(page)}}

    # --- webhook payloads ------------------------------------------------------------------
    @staticmethod
    def message(
        *,
        guid: str | None = None,
        text: str | None = "hello",
        address: str = "+14155550123",
        is_from_me: bool = False,
        date_created: int | None = None,
        chat: str | None = None,
        chat_name: str = "",
        attachments: list | None = None,
        associated_guid: str | None = None,
        associated_type=None,
        item_type: int = 0,
        group_action_type: int = 0,
        group_title: str | None = None,
        other_handle: int = 0,
        participants: list | None = None,
        thread_originator: str | None = None,
        date_edited: int | None = None,
        date_retracted: int | None = None,
        part_count: int = 1,
        with_chats: bool = True,
    ) -> dict:
        chat = chat or f"iMessage;-;{address}"
        data = {
            "originalROWID": 1234,
            "guid": guid or message_guid(),
            "text": text,
            "attributedBody": None,
            "handle": {"originalROWID": 12, "address": address, "service": "iMessage"},
            "handleId": 12,
            "otherHandle": other_handle,
            "attachments": attachments or [],
            "subject": None,
            "error": 0,
            "dateCreated": date_created or _now_ms(),
            "dateRead": None,
            "dateDelivered": None,
            "isDelivered": is_from_me,
            "isFromMe": is_from_me,
            "hasDdResults": False,
            "isArchived": False,
            "itemType": item_type,
            "groupTitle": group_title,
            "groupActionType": group_action_type,
            "balloonBundleId": None,
            "associatedMessageGuid": associated_guid,
            "associatedMessageType": associated_type,
            "expressiveSendStyleId": None,
            "threadOriginatorGuid": thread_originator,
            "hasPayloadData": False,
            "messageSummaryInfo": None,
            "payloadData": None,
            "dateEdited": date_edited,
            "dateRetracted": date_retracted,
            "partCount": part_count,
        }
        if with_chats:  # ChatSerializer; participants only where the server loads them (participant-* events)
            row = {"originalROWID": 3, "guid": chat, "style": 43 if ";+;" in chat else 45, "chatIdentifier": chat.split(";")[-1],
                   "isArchived": False, "displayName": chat_name}
            if participants is not None:
                row["participants"] = participants
            data["chats"] = [row]
        return data

    def new_message(self, **kwargs) -> dict:
        return {"type": "new-message", "data": self.message(**kwargs)}

    def updated_message(self, guid: str, *, delivered: bool = True, read: bool = False) -> dict:
        original = next((m for m in self.sent if m["guid"] == guid), None) or self.message(guid=guid, is_from_me=True)
        data = {**original, "dateDelivered": _now_ms() if delivered or read else None, "dateRead": _now_ms() if read else None}
        data.pop("chats", None)  # updated-message is serialised without chats (index.ts handleUpdatedMessage)
        return {"type": "updated-message", "data": data}

    def send_error(self, guid: str, *, error: int = 4) -> dict:
        original = next((m for m in self.sent if m["guid"] == guid), None) or self.message(guid=guid, is_from_me=True)
        return {"type": "message-send-error", "data": {**original, "error": error}}
