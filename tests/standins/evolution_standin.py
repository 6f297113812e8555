"""A loopback stand-in for an Evolution API v2 gateway (the shared server base lives in
tests/standins/loopback.py and is re-exported here for the other stand-ins).

It speaks the gateway's wire format as its source has it (EvolutionAPI/evolution-api:
src/api/routes/*.router.ts, src/validate/*.schema.ts, the controllers and
src/api/integrations/channel/whatsapp/whatsapp.baileys.service.ts): `apikey` header auth;
/instance/create|connect|connectionState|logout|fetchInstances; /webhook/set;
/message/sendText|sendMedia (with `quoted`)|sendReaction; /chat/markMessageAsRead|findMessages|
whatsappNumbers. It keeps the messages it saw (its database: findMessages reads it) and the LID
-> phone pairs it learnt, and builds webhook envelopes (tests/standins/evolution_payloads.py)."""
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from tests.standins import evolution_payloads as wire
from tests.standins.loopback import Drop, Late, LoopbackStandIn, Raw, Recorded

__all__ = ["Drop", "EvolutionStandIn", "Instance", "Late", "LoopbackStandIn", "Raw", "Recorded"]


@dataclass
class Instance:
    name: str
    token: str
    webhook: dict
    number: str = ""
    state: str = "connecting"  # open | close | connecting
    wuid: str = ""
    qr_count: int = 0
    sent: list = field(default_factory=list)
    presence: list = field(default_factory=list)  # ("composing", ms) shown before a send
    store: list = field(default_factory=list)  # every message record it keeps (findMessages)
    lid_phones: dict = field(default_factory=dict)  # '123@lid' -> '14155550123@s.whatsapp.net'
    reads: list = field(default_factory=list)  # keys marked read
    reactions: list = field(default_factory=list)  # sendReaction bodies


def _error(status: int, message: str):
    names = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}
    return status, {"status": status, "error": names.get(status, "Error"), "response": {"message": [message]}}


def _is_user_jid(jid) -> bool:
    return isinstance(jid, str) and (jid.endswith("@g.us") or jid.endswith("@s.whatsapp.net"))


class EvolutionStandIn(LoopbackStandIn):
    def __init__(self, *, api_key: str = "global-test-key"):
        super().__init__()
        self.api_key = api_key
        self.instances: dict[str, Instance] = {}
        self.create_answer = "answer"  # "drop": create, then close with no answer; ("late", s): answer after s
        self.fetch_shape = "v2"  # "v1": {instance: {instanceName, apikey}}; "v1-hidden": without apikey

    # --- the API --------------------------------------------------------------------------
    def route(self, request: Recorded):
        key = request.headers.get("apikey", "")
        parts = request.path.strip("/").split("/")
        name = parts[2] if len(parts) > 2 else ""
        instance = self.instances.get(name)
        if key != self.api_key and not (instance and key == instance.token):
            return 401, {"status": 401, "error": "Unauthorized", "response": {"message": "Unauthorized"}}
        body = request.json if request.body else {}
        if request.method == "POST" and request.path == "/instance/create":
            return self._create(body)
        if request.method == "GET" and request.path == "/instance/fetchInstances":
            return self._fetch(request.query.get("instanceName", ""))
        if parts[0] in ("instance", "webhook", "message", "chat") and instance is None:
            return _error(404, f'The "{name}" instance does not exist')
        route = (request.method, *parts[:2])
        if route == ("GET", "instance", "connect"):
            if instance.state == "open":
                return 200, {"instance": {"instanceName": name, "state": "open"}}
            instance.state = "connecting"
            return 200, self._qrcode(instance)
        if route == ("GET", "instance", "connectionState"):
            return 200, {"instance": {"instanceName": name, "state": instance.state}}
        if route == ("DELETE", "instance", "logout"):
            if instance.state != "open":
                return _error(400, f'The "{name}" instance is not connected')
            instance.state = "close"
            return 200, {"status": "SUCCESS", "error": False, "response": {"message": "Instance logged out"}}
        if route == ("POST", "webhook", "set"):
            instance.webhook = {k: v for k, v in body["webhook"].items() if k != "enabled"}
            return 201, {"id": secrets.token_hex(8), "enabled": True, **instance.webhook}
        if route == ("POST", "message", "sendText"):
            return self._send(instance, body, {"conversation": body["text"]})
        if route == ("POST", "message", "sendMedia"):
            kind = f"{body['mediatype']}Message"
            return self._send(instance, body, {kind: {"url": body["media"], "mimetype": body.get("mimetype", ""),
                                                      "caption": body.get("caption", "")}})
        if route == ("POST", "message", "sendReaction"):
            return self._react(instance, body)
        if route == ("POST", "chat", "markMessageAsRead"):
            return self._read(instance, body)
        if route == ("POST", "chat", "findMessages"):
            return self._find_messages(instance, body)
        if route == ("POST", "chat", "whatsappNumbers"):
            return self._numbers(instance, body)
        return _error(404, f"Cannot {request.method} {request.path}")

    def _create(self, body: dict):
        name = body["instanceName"]
        if body.get("integration") != "WHATSAPP-BAILEYS":
            return _error(400, "integration must be WHATSAPP-BAILEYS")
        if name in self.instances:
            return _error(403, f'This name "{name}" is already in use.')
        instance = Instance(name=name, token=secrets.token_hex(16).upper(), webhook=body.get("webhook") or {}, number=body.get("number", ""))
        self.instances[name] = instance
        answer = {
            "instance": {"instanceName": name, "instanceId": secrets.token_hex(16), "integration": "WHATSAPP-BAILEYS", "status": "connecting"},
            "hash": instance.token,
            "webhook": instance.webhook,
            "settings": {"rejectCall": False, "groupsIgnore": False, "alwaysOnline": False},
        }
        if body.get("qrcode"):
            answer["qrcode"] = self._qrcode(instance)
        if self.create_answer == "drop":
            return Drop()
        if isinstance(self.create_answer, tuple):
            return Late(self.create_answer[1], (201, answer))
        return 201, answer

    def _fetch(self, name: str):
        """instance.controller.ts fetchInstances -> monitor.service.ts instanceInfo."""
        chosen = [self.instances[name]] if name in self.instances else [] if name else list(self.instances.values())
        if name and not chosen:
            return _error(404, f'Instance "{name}" not found')
        if self.fetch_shape == "v2":
            return 200, [wire.instance_row(i.name, i.token, state=i.state, wuid=i.wuid) for i in chosen]
        rows = [wire.instance_row_v1(i.name, i.token, state=i.state, expose=self.fetch_shape == "v1") for i in chosen]
        return 200, rows[0] if name else rows

    def _qrcode(self, instance: Instance) -> dict:
        instance.qr_count += 1
        return {
            "pairingCode": "WZYEH1YY" if instance.number else None,
            "code": self.qr_code(instance.name),
            "base64": "data:image/png;base64,iVBORw0KGgo=",
            "count": instance.qr_count,
        }

    def qr_code(self, name: str) -> str:
        return f"2@standin-{name}-{self.instances[name].qr_count},key=,ref="

    def _send(self, instance: Instance, body: dict, content: dict):
        if instance.state != "open":
            return _error(400, "Connection Closed")
        number = body["number"]
        # createJid: digits, a group, or (2.3.6 on) a LID, which it sends to as it is
        if not (str(number).isdigit() or str(number).endswith(("@g.us", "@lid"))):
            return _error(400, f"{number} is not a WhatsApp number")
        delay = body.get("delay", 0)
        if not isinstance(delay, int) or delay < 0:
            return _error(400, "delay must be a whole number of milliseconds")
        quoted = body.get("quoted")
        if quoted is not None:  # message.schema.ts quotedOptionsSchema: key.id required, not empty
            if not isinstance(quoted, dict) or not isinstance(quoted.get("key"), dict) or not quoted["key"].get("id"):
                return _error(400, 'quoted: "key.id" is required and cannot be empty')
            # sendMessageWithTyping: the quoted message from the request, else from its store;
            # one it does not keep goes out unquoted.
            original = quoted if quoted.get("message") else self.stored(instance.name, quoted["key"]["id"])
            if original and "conversation" in content:
                content = wire.reply_content(content["conversation"], original)
            elif original:
                part = next(iter(content.values()))
                part["contextInfo"] = wire.reply_content("", original)["extendedTextMessage"]["contextInfo"]
        jid = number if "@" in str(number) else f"{number}@s.whatsapp.net"
        key = {"remoteJid": jid, "fromMe": True, "id": "3EB0" + secrets.token_hex(8).upper()}
        message = wire.prepared(key, content, instance_id=instance.name, status="PENDING")
        message["source"] = "unknown"
        instance.sent.append(message)
        instance.store.append(message)
        if delay:
            instance.presence.append(("composing", delay))
            return Late(delay / 1000, (201, message))  # the gateway shows "typing…", then sends
        return 201, message

    def _react(self, instance: Instance, body: dict):
        key = body.get("key")  # message.schema.ts reactionMessageSchema
        if not isinstance(key, dict) or not key.get("id") or not key.get("remoteJid") or not isinstance(key.get("fromMe"), bool):
            return _error(400, 'key: "id", "remoteJid" and "fromMe" are required')
        if not isinstance(body.get("reaction"), str):
            return _error(400, '"reaction" is required')
        if instance.state != "open":
            return _error(400, "Connection Closed")
        instance.reactions.append(body)
        own = {"remoteJid": key["remoteJid"], "fromMe": True, "id": "3EB0" + secrets.token_hex(8).upper()}
        message = wire.prepared(own, wire.reaction_content(key, body["reaction"]), instance_id=instance.name, status="PENDING")
        return 201, message

    def _read(self, instance: Instance, body: dict):
        reads = body.get("readMessages")  # chat.schema.ts readMessageSchema
        if not isinstance(reads, list) or not reads:
            return _error(400, '"readMessages" is required')
        for read in reads:
            if not isinstance(read, dict) or not read.get("id") or not read.get("remoteJid") or not isinstance(read.get("fromMe"), bool):
                return _error(400, 'readMessages: "id", "fromMe" and "remoteJid" are required')
        # markMessageAsRead: only group and phone-number chats are read
        instance.reads += [r for r in reads if _is_user_jid(r["remoteJid"])]
        return 201, {"message": "Read messages", "read": "success"}

    def _find_messages(self, instance: Instance, body: dict):
        """fetchMessages: newest first, `offset` per page (default 50), the time filter only
        with both bounds."""
        stamps = ((body.get("where") or {}).get("messageTimestamp")) or {}
        records = list(instance.store)
        if stamps.get("gte") and stamps.get("lte"):
            low, high = (int(datetime.fromisoformat(stamps[b]).timestamp()) for b in ("gte", "lte"))
            records = [r for r in records if low <= r["messageTimestamp"] <= high]
        records.sort(key=lambda r: r["messageTimestamp"], reverse=True)
        offset, page = int(body.get("offset") or 50), int(body.get("page") or 1)
        chunk = records[offset * (page - 1): offset * page]
        rows = [{"id": secrets.token_hex(12), **{k: r[k] for k in ("key", "pushName", "messageType", "message",
                 "messageTimestamp", "instanceId", "source", "contextInfo")}, "MessageUpdate": []} for r in chunk]
        pages = -(-len(records) // offset)
        return 200, {"messages": {"total": len(records), "pages": pages, "currentPage": page, "records": rows}}

    def _numbers(self, instance: Instance, body: dict):
        """whatsappNumber: a LID it has seen with its phone answers the phone's JID, any other
        LID itself (`lid: "lid"`); phone numbers their JID."""
        answer = []
        for number in body.get("numbers") or []:
            if number.endswith("@lid"):
                answer.append({"jid": instance.lid_phones.get(number, number), "exists": True, "number": number,
                               "name": None, "lid": "lid"})
            else:
                digits = number.split("@")[0].lstrip("+")
                answer.append({"jid": f"{digits}@s.whatsapp.net", "exists": True, "number": number, "name": None, "lid": None})
        return 200, answer

    # --- test helpers ---------------------------------------------------------------------
    def stored(self, name: str, message_id: str) -> dict | None:
        return next((r for r in self.instances[name].store if r["key"]["id"] == message_id), None)

    def webhook_path(self, name: str) -> str:
        """Path + query of the webhook the instance was created with (for the test client)."""
        parts = urlsplit(self.instances[name].webhook["url"])
        return f"{parts.path}?{parts.query}" if parts.query else parts.path

    def envelope(self, name: str, event: str, data, *, apikey: str | None = None) -> dict:
        instance = self.instances[name]
        return wire.envelope(name, event, data, url=instance.webhook.get("url", ""), sender=instance.wuid or None,
                             server_url=self.url, apikey=instance.token if apikey is None else apikey)

    def link(self, name: str, phone: str, *, profile_name: str = "Shop") -> dict:
        """The phone scanned the QR: the instance opens; returns the CONNECTION_UPDATE event."""
        instance = self.instances[name]
        instance.state, instance.wuid = "open", f"{phone.lstrip('+')}@s.whatsapp.net"
        return self.connection_update(name, "open", profile_name=profile_name)

    def connection_update(self, name: str, state: str, *, status_reason: int = 200, profile_name: str = "") -> dict:
        instance = self.instances[name]
        if state != "open":
            instance.state = state
        data = {"instance": name, "wuid": instance.wuid, "profileName": profile_name, "state": state, "statusReason": status_reason}
        return self.envelope(name, "connection.update", data)

    def qrcode_updated(self, name: str) -> dict:
        qrcode = self._qrcode(self.instances[name])
        return self.envelope(name, "qrcode.updated", {"qrcode": {"instance": name, **qrcode}})

    def messages_upsert(self, name: str, *, remote_jid: str, text: str = "hello", message_id: str | None = None,
                        from_me: bool = False, push_name: str = "", participant: str | None = None,
                        remote_jid_alt: str | None = None, sender_pn: str | None = None, message: dict | None = None,
                        timestamp: int | None = None, key_extra: dict | None = None) -> dict:
        """A message the phone received or sent (from_me), as the gateway posts it; it also
        keeps it (findMessages) and learns the LID -> phone pair a key carries."""
        key = wire.message_key(remote_jid, message_id=message_id, from_me=from_me, participant=participant,
                               remoteJidAlt=remote_jid_alt, senderPn=sender_pn, **(key_extra or {}))
        record = wire.prepared(key, message if message is not None else {"conversation": text}, push_name=push_name,
                               timestamp=timestamp, instance_id=name)
        instance = self.instances[name]
        instance.store.append(record)
        ids = [key.get(f) for f in ("remoteJid", "remoteJidAlt", "senderPn", "participant", "participantAlt", "participantPn")]
        lid = next((i for i in ids if isinstance(i, str) and i.endswith("@lid")), None)
        phone = next((i for i in ids if isinstance(i, str) and i.endswith("@s.whatsapp.net")), None)
        if lid and phone:
            instance.lid_phones[lid] = phone
        return self.envelope(name, "messages.upsert", record)

    def reaction(self, name: str, *, remote_jid: str, target_id: str, emoji: str, from_me: bool = False,
                 target_from_me: bool = True, participant: str | None = None, **key_extra) -> dict:
        target = wire.message_key(remote_jid, message_id=target_id, from_me=target_from_me)
        return self.messages_upsert(name, remote_jid=remote_jid, from_me=from_me, participant=participant,
                                    message=wire.reaction_content(target, emoji), key_extra=key_extra)

    def reply(self, name: str, *, remote_jid: str, text: str, quoted_id: str, **kwargs) -> dict:
        """A contact's message quoting an earlier one the gateway keeps."""
        return self.messages_upsert(name, remote_jid=remote_jid, message=wire.reply_content(text, self.stored(name, quoted_id)), **kwargs)

    def messages_edited(self, name: str, *, target_id: str, remote_jid: str, text: str | None = None,
                        from_me: bool = False, numeric: bool = False) -> dict:
        """MESSAGES_EDITED: the protocolMessage of an edit (text) or a deletion for everyone, whose
        key is the edited message's as its sender wrote it (WhatsApp sends the protocolMessage as
        the sender built it; Baileys process-message.ts reads only its `id`): always fromMe, in a
        1:1 chat addressed to the other side — the account's own number when the contact (at
        `remote_jid`) made it, `remote_jid` when the account's phone did."""
        own = self.instances[name].wuid or "0@s.whatsapp.net"
        target = wire.message_key(remote_jid if from_me else own, message_id=target_id, from_me=True)
        return self.envelope(name, "messages.edited", wire.protocol_message(target, text=text, numeric=numeric))

    def messages_delete(self, name: str, *, target_id: str, remote_jid: str, from_me: bool = False,
                        participant: str | None = None, v237: bool = False) -> dict:
        key = wire.message_key(remote_jid, message_id=target_id, from_me=from_me, participant=participant)
        return self.envelope(name, "messages.delete", {**key, "status": "DELETED"} if v237 else key)

    def messages_update(self, name: str, *, key_id: str, status: str, remote_jid: str = "", from_me: bool = True,
                        message: dict | None = None) -> dict:
        data = {
            "messageId": secrets.token_hex(12),
            "keyId": key_id,
            "remoteJid": remote_jid,
            "fromMe": from_me,
            "participant": remote_jid,
            "status": status,
            "instanceId": name,
        }
        if message is not None:  # 2.3.7: an edit's new content
            data["message"] = message
        return self.envelope(name, "messages.update", data)

    def logout_instance(self, name: str) -> dict:
        self.instances[name].state = "close"
        return self.envelope(name, "logout.instance", {"instance": name, "state": "closed"})

    def keep(self, name: str, record: dict) -> None:
        """Put a message in the gateway's store without a webhook (history it holds)."""
        self.instances[name].store.append(record)

    @staticmethod
    def now() -> int:
        return int(time.time())
