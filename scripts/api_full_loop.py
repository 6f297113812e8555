#!/usr/bin/env python3
"""The full loop over HTTP, as an external system sees WhatSnap, against a running server:

  1. create a Twilio account through the REST API (201: its id, tag and webhook URLs),
  2. deliver a signed inbound SMS to the account's webhook URL, exactly as Twilio does
     (X-Twilio-Signature, made with the auth token this script supplied: nothing secret is
     read back from the API),
  3. find the new contact by phone, carrying the account's tag,
  4. send a reply through the API (with an Idempotency-Key; a retry answers the same message),
     and wait until it has left (sent / delivered).

    python scripts/api_full_loop.py --base http://127.0.0.1:8000 --token <API token> \\
        --account-sid AC... --auth-token ... --twilio-number +14155550100 --from +14155550123

With a real Twilio account the reply is a real SMS. Without one, start the server with
TWILIO_API_BASE_URL=http://127.0.0.1:8099 and pass `--twilio-standin 127.0.0.1:8099`: the
script then serves a small stand-in of Twilio's REST API there (and generates credentials).
Exit status 0 when the loop closed; a message on stderr says which step failed otherwise."""
import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx


class LoopFailed(Exception):
    pass


def twilio_signature(auth_token: str, url: str, params: dict) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the URL + sorted key/value pairs."""
    payload = url + "".join(k + params[k] for k in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


# --- an optional stand-in for Twilio's REST API -----------------------------------------------
def serve_twilio_standin(address: str, account_sid: str, auth_token: str, number: str) -> ThreadingHTTPServer:
    host, port = address.rsplit(":", 1)
    expected = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
    base = f"/2010-04-01/Accounts/{account_sid}"
    incoming = {"sid": "PN" + secrets.token_hex(16), "phone_number": number, "capabilities": {"sms": True}, "sms_url": ""}

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.headers.get("Authorization") != expected:
                return self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
            if self.path == base + ".json":
                return self._answer(200, {"sid": account_sid, "status": "active", "friendly_name": "stand-in"})
            if urlsplit(self.path).path == base + "/IncomingPhoneNumbers.json":  # the account's numbers (connect)
                return self._answer(200, {"incoming_phone_numbers": [incoming], "next_page_uri": None, "page": 0})
            self._answer(404, {"code": 20404, "message": "Not found", "status": 404})

        def do_POST(self):
            if self.headers.get("Authorization") != expected:
                return self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
            if self.path == f"{base}/IncomingPhoneNumbers/{incoming['sid']}.json":  # connect points it at our webhooks
                incoming["sms_url"] = form.get("SmsUrl", "")
                return self._answer(200, incoming)
            if self.path != base + "/Messages.json":
                return self._answer(404, {"code": 20404, "message": "Not found", "status": 404})
            sid = "SM" + secrets.token_hex(16)
            self._answer(201, {"sid": sid, "status": "queued", "to": form.get("To"), "from": form.get("From"),
                               "body": form.get("Body"), "account_sid": account_sid})

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((host, int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- the loop ----------------------------------------------------------------------------------
def _expect(response: httpx.Response, status: int, step: str) -> dict:
    if response.status_code != status:
        raise LoopFailed(f"{step}: expected HTTP {status}, got {response.status_code}: {response.text[:500]}")
    return response.json() if response.content and "json" in response.headers.get("content-type", "") else {}


def _wait_for(step: str, timeout: float, probe):
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise LoopFailed(f"{step}: nothing after {timeout:.0f} s")
        time.sleep(0.3)


def run_loop(args, log=print) -> dict:
    api = httpx.Client(base_url=args.base.rstrip("/") + "/api/v1", headers={"Authorization": f"Token {args.token}"}, timeout=30)

    # 1. a Twilio account through the API
    name = args.name or f"loop-{secrets.token_hex(3)}"
    account = _expect(api.post("/accounts/", json={
        "kind": "twilio", "name": name, "phone_number": args.twilio_number,
        "credentials": {"account_sid": args.account_sid, "auth_token": args.auth_token},
    }), 201, "create the Twilio account")
    log(f"1. account {account['id']} created: tag {account['tag']}, status {account['status']}, "
        f"inbound webhook {account['webhook_urls']['inbound']}")
    if account["status"] != "connected":
        raise LoopFailed(f"the account did not connect: {account['last_error'] or account['status']}")

    # 2. a signed inbound SMS, as Twilio posts it
    webhook_url = account["webhook_urls"]["inbound"]
    params = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": args.account_sid, "From": args.sender,
              "To": args.twilio_number, "Body": args.text, "NumMedia": "0"}
    target = urlsplit(webhook_url)
    post_url = args.base.rstrip("/") + target.path + (f"?{target.query}" if target.query else "")
    response = httpx.post(post_url, data=params, timeout=30,
                          headers={"X-Twilio-Signature": twilio_signature(args.auth_token, webhook_url, params)})
    _expect(response, 200, "deliver the signed inbound webhook")
    log(f"2. inbound SMS from {args.sender} accepted ({params['MessageSid']})")

    # 3. the contact, found by phone, with the account's tag
    def contact_with_tag():
        rows = _expect(api.get("/contacts/", params={"phone": args.sender}), 200, "find the contact")["results"]
        return rows[0] if rows and account["tag"] in rows[0]["tags"] else None

    contact = _wait_for("find the contact by phone with its tag", args.timeout, contact_with_tag)
    log(f"3. contact {contact['id']} {contact['phone']} has the tags {', '.join(contact['tags'])}")

    # 4. a reply; the Idempotency-Key makes the retry below answer the same message
    key = str(uuid.uuid4())
    reply = {"contact": contact["id"], "account": account["id"], "text": args.reply}
    message = _expect(api.post("/messages/", json=reply, headers={"Idempotency-Key": key}), 201, "send the reply")
    again = _expect(api.post("/messages/", json=reply, headers={"Idempotency-Key": key}), 201, "retry the reply")
    if again["id"] != message["id"]:
        raise LoopFailed("the retried send created a second message")

    def left():
        current = _expect(api.get(f"/messages/{message['id']}/"), 200, "read the reply")
        if current["status"] == "failed":
            raise LoopFailed(f"the reply failed: {current['error']}")
        return current if current["status"] in ("sent", "delivered", "read") else None

    sent = _wait_for("the reply to leave", args.timeout, left)
    log(f"4. reply {sent['id']} is {sent['status']} (provider id {sent['provider_message_id']})")
    if args.cleanup:
        _expect(api.delete(f"/accounts/{account['id']}/"), 204, "delete the account")
        log(f"   account {account['id']} deleted (archived)")
    return {"account": account["id"], "tag": account["tag"], "contact": contact["id"], "message": sent["id"],
            "status": sent["status"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="an admin API token of the location")
    parser.add_argument("--account-sid", help="Twilio Account SID (generated with --twilio-standin)")
    parser.add_argument("--auth-token", help="Twilio auth token (generated with --twilio-standin)")
    parser.add_argument("--twilio-number", default="+14155550100", help="the Twilio number (E.164)")
    parser.add_argument("--from", dest="sender", default="+14155550123", help="who writes in (E.164)")
    parser.add_argument("--text", default="Hello from the full loop")
    parser.add_argument("--reply", default="Thanks, we got your message")
    parser.add_argument("--name", help="account name (default: loop-<random>)")
    parser.add_argument("--twilio-standin", metavar="HOST:PORT",
                        help="serve a stand-in of Twilio's REST API here (the server's TWILIO_API_BASE_URL)")
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait for each asynchronous step")
    parser.add_argument("--cleanup", action="store_true", help="delete (archive) the account at the end")
    args = parser.parse_args(argv)
    standin = None
    if args.twilio_standin:
        args.account_sid = args.account_sid or "AC" + secrets.token_hex(16)
        args.auth_token = args.auth_token or secrets.token_hex(16)
        standin = serve_twilio_standin(args.twilio_standin, args.account_sid, args.auth_token, args.twilio_number)
    elif not (args.account_sid and args.auth_token):
        parser.error("give --account-sid and --auth-token (or --twilio-standin HOST:PORT)")
    try:
        result = run_loop(args)
    except (LoopFailed, httpx.HTTPError) as exc:
        print(f"full loop FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if standin is not None:
            standin.shutdown()
    print("full loop OK " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
