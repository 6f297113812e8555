"""The small threaded HTTP server on loopback every backend stand-in is built on.

A route may answer `Drop()` (the connection closes with no answer: a gateway that did the work
but whose answer was lost) or `Late(seconds, answer)` (answered after a pause, without holding
up the stand-in's other requests)."""
import json
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


# --- shared base -----------------------------------------------------------------------------
@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict  # lower-case names
    body: bytes

    @property
    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class Raw:
    """A non-JSON answer (a file)."""

    body: bytes
    content_type: str


@dataclass
class Drop:
    """No answer: the connection is closed once the request was read (and acted on)."""


@dataclass
class Late:
    """`answer` (a (status, body) pair), sent after `seconds`."""

    seconds: float
    answer: tuple


class LoopbackStandIn(ABC):
    """A threaded HTTP server on 127.0.0.1 at a random port. Subclasses implement
    `route(request) -> (status, json-able body or None)`. Every request is recorded;
    `fail_with()` makes every answer an error, `down()` closes the port."""

    def __init__(self):
        self.requests: list[Recorded] = []
        self.failure: tuple[int, object] | None = None
        self.lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                request = Recorded(
                    self.command, parts.path, dict(parse_qsl(parts.query)), {k.lower(): v for k, v in self.headers.items()}, body
                )
                answer = standin.dispatch(request)
                if isinstance(answer, Drop):
                    self.close_connection = True
                    return
                if isinstance(answer, Late):
                    time.sleep(answer.seconds)
                    answer = answer.answer
                status, payload = answer
                content_type = "application/json"
                if isinstance(payload, Raw):
                    data, content_type = payload.body, payload.content_type
                else:
                    data = b"" if payload is None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up waiting (a Late answer)
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.is_up = True

    def dispatch(self, request: Recorded):
        with self.lock:
            self.requests.append(request)
            if self.failure is not None:
                return self.failure
            try:
                return self.route(request)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                return 400, {"status": 400, "error": "Bad Request", "message": f"stand-in could not read the request: {exc!r}"}

    @abstractmethod
    def route(self, request: Recorded):
        """(status, JSON-able body | Raw | None) for one request, or Drop() / Late(...)."""

    def fail_with(self, status: int, body=None) -> None:
        self.failure = (status, body if body is not None else {"status": status, "message": "stand-in failure"})

    def recover(self) -> None:
        self.failure = None

    def down(self) -> None:
        """Stop listening: calls now get 'connection refused'."""
        if self.is_up:
            self.server.shutdown()
            self.server.server_close()
            self.is_up = False

    close = down

    def received(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.down()
