"""Guarded fetch: the one way the server calls an address a user supplied.

Attachment URLs (the inbox's media view, links handed to a gateway to send), the address of a
person's own device (the Android phone in local mode, the Mac running BlueBubbles) and
outgoing webhook receivers are chosen by users, not by the operator. Called unguarded, they
let a tenant read the server's loopback, its private network or the cloud metadata service,
and port-scan through the answers. Every such call goes through here:

- the URL must be http(s), name a host and carry no `user:password@`;
- the host is resolved once, every address is classified, and the socket connects to an
  address that was checked: the check sits in the httpcore network backend, so there is no
  second lookup to rebind. The Host header, TLS SNI and certificate check stay those of the
  URL's host name;
- loopback, private (RFC 1918, CGNAT 100.64/10, ULA fc00::/7), link-local and other
  non-global addresses are refused unless the operator allows them for that purpose
  (GATEWAY_ALLOW_PRIVATE_URLS, MEDIA_ALLOW_PRIVATE_URLS, WEBHOOKS_ALLOW_PRIVATE_URLS);
  metadata services, 0.0.0.0/8, multicast and reserved ranges never are. IPv6 forms of an
  IPv4 address (mapped, 6to4, NAT64) are judged by that IPv4 address;
- redirects are followed by hand for media only (MAX_REDIRECTS hops, each checked again, the
  credentials only to the origin they were given for); device and webhook calls follow none;
- answers are capped in size (streamed, abandoned past the cap) and time (connect, and one
  deadline over every read and write of the call);
- a refusal carries a short reason fit to show a user, never the upstream's body.

Operator-configured bases (Evolution, WAHA, the SMS Gateway cloud, Twilio, GHL) are trusted and
are called directly; a media URL on such an origin is fetched here with `trusted=True`, which
skips the address check for that origin only.

Our own code rather than a library: no maintained SSRF guard fits a synchronous httpx client
(httpx-secure is async-only and little used; advocate is built on requests). The job is one
network backend, one classifier and a redirect loop, small enough to own; its tests are
tests/test_guarded_fetch.py."""
import ipaddress
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpcore
import httpx
from django.conf import settings

logger = logging.getLogger(__name__)

GATEWAY, MEDIA, WEBHOOKS = "gateway", "media", "webhooks"
ALLOW_SETTING = {GATEWAY: "GATEWAY_ALLOW_PRIVATE_URLS", MEDIA: "MEDIA_ALLOW_PRIVATE_URLS", WEBHOOKS: "WEBHOOKS_ALLOW_PRIVATE_URLS"}
PUBLIC_ONLY = {
    GATEWAY: "devices are called at public addresses only",
    MEDIA: "attachments are fetched from public addresses only",
    WEBHOOKS: "webhooks go to public addresses only",
}
# what a person can do about a refused private address without the operator
NEXT_STEP = {
    GATEWAY: " Otherwise use an address the server reaches over the internet, or the app's cloud mode.",
    MEDIA: "",
    WEBHOOKS: "",
}
MAX_REDIRECTS = 5
PUBLIC, PRIVATE, NEVER = "public", "private", "never"
# Cloud metadata services (AWS/GCP/Azure/OpenStack, AWS ECS, Alibaba, AWS over IPv6): never,
# whatever the operator allows, since they hand out the server's own credentials.
_METADATA = frozenset(map(ipaddress.ip_address, ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")))
_NEVER_V4 = (ipaddress.ip_network("0.0.0.0/8"),)  # "this network": 0.0.0.0 reaches the server itself
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

network = httpcore.SyncBackend()  # the real sockets; tests may route made-up public addresses to loopback


@dataclass(frozen=True)
class Limits:
    connect: float = 5.0  # seconds to open the connection
    total: float = 30.0  # seconds for the whole call, every read and write included
    max_bytes: int = 1024 * 1024  # answer body


@dataclass(frozen=True)
class Target:
    """What to call. auth, headers and params go to the origin of `url` only (never to a
    redirect elsewhere); trusted=True means the operator configured that origin (Twilio's API,
    the WAHA gateway), so its address is not checked."""

    url: str
    purpose: str = MEDIA
    auth: tuple[str, str] | None = None
    headers: dict | None = None
    params: dict | None = None
    trusted: bool = False


class FetchError(Exception):
    """A guarded call failed; str() is a short reason fit to show a user."""


class AddressRefused(FetchError):
    """The URL or an address it resolves to may not be called for this purpose (permanent)."""


class TooLarge(FetchError):
    """The answer is larger than the call's cap."""


# --- addresses -------------------------------------------------------------------------------
def _as_ipv4(ip):
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), else the address."""
    if ip.version == 6:
        if ip.ipv4_mapped or ip.sixtofour:
            return ip.ipv4_mapped or ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def address_kind(address: str) -> str:
    """PUBLIC, PRIVATE (loopback, RFC 1918, CGNAT, ULA, link-local, documentation: the operator
    may allow these per purpose) or NEVER (metadata, unspecified, multicast, reserved)."""
    ip = _as_ipv4(ipaddress.ip_address(address.split("%", 1)[0]))
    if ip.is_loopback:
        return PRIVATE  # before is_reserved, which holds ::1 (::/8)
    if ip in _METADATA or ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return NEVER
    if ip.version == 4 and any(ip in net for net in _NEVER_V4):
        return NEVER
    return PUBLIC if ip.is_global else PRIVATE


def private_allowed(purpose: str) -> bool:
    return bool(getattr(settings, ALLOW_SETTING[purpose]))


def check_address(address: str, purpose: str) -> None:
    """Raise AddressRefused unless `purpose` may connect to this IP address."""
    kind = address_kind(address)
    if kind == PUBLIC or (kind == PRIVATE and private_allowed(purpose)):
        return
    logger.warning("refused a %s address: %s (%s)", purpose, address, kind)  # probing shows up in the log
    if kind == PRIVATE:
        raise AddressRefused(f"The address points to a private network ({address}); {PUBLIC_ONLY[purpose]} "
                             f"unless whoever runs this WhatSnap server allows it ({ALLOW_SETTING[purpose]}=true).{NEXT_STEP[purpose]}")
    raise AddressRefused(f"The address points to a reserved or cloud metadata address ({address}); {PUBLIC_ONLY[purpose]}.")


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses in the system's order ([] when it does not resolve). Tests replace
    this to give made-up names their addresses."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        return []
    return list(dict.fromkeys(info[4][0] for info in infos))


def _literal_ip(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


# --- URLs --------------------------------------------------------------------------------------
def parse_url(url: str) -> httpx.URL:
    """The URL as httpx will request it; AddressRefused when it is not a plain http(s) URL."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise AddressRefused("The address is not a valid URL.") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise AddressRefused("The address must be an http:// or https:// URL naming a host.")
    if parsed.userinfo:
        raise AddressRefused("The address may not carry a user name or password (user:password@).")
    return parsed


def origin(url) -> tuple[str, str, int]:
    """(scheme, host as it goes on the wire, port with the default filled in); credentials
    stay within one. ("", "", 0) for what is not a URL."""
    try:
        parsed = httpx.URL(str(url))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "", "", 0
    host = parsed.raw_host.decode("ascii")
    return parsed.scheme, host, parsed.port or (443 if parsed.scheme == "https" else 80)


def address_problem(url: str, *, purpose: str) -> str:
    """Why `url` may not be called for `purpose` ("" when it may): for checks at save time. A
    name that does not resolve passes (calling it fails later); with private addresses allowed
    only literal addresses are judged, so nothing is looked up."""
    try:
        _scheme, host, port = origin(parse_url(url))
        literal = _literal_ip(host)
        if literal is None and private_allowed(purpose):
            return ""
        for address in [literal] if literal else resolve(host, port):
            check_address(address, purpose)
    except AddressRefused as exc:
        return str(exc)
    return ""


# --- the pinned connection ---------------------------------------------------------------------
class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every read and write shares the call's deadline (total time cap)."""

    def __init__(self, stream, deadline: float):
        self.stream, self.deadline = stream, deadline

    def _left(self, timeout, error):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise error("the answer took too long")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes, timeout=None):
        return self.stream.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer, timeout=None):
        self.stream.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self):
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        # server_hostname is the URL's host name (httpcore passes it): SNI and the
        # certificate check are for the name, not for the pinned address.
        tls = self.stream.start_tls(ssl_context, server_hostname, self._left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls, self.deadline)

    def get_extra_info(self, info):
        return self.stream.get_extra_info(info)


class _PinnedBackend(httpcore.NetworkBackend):
    """Resolves the host once, checks every address, connects to a checked one."""

    def __init__(self, purpose: str, trusted: tuple[str, int] | None, deadline: float):
        self.purpose, self.trusted, self.deadline = purpose, trusted, deadline

    def _addresses(self, host: str, port: int) -> list[str]:
        addresses = resolve(host, port)
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        trusted = (host, port) == self.trusted
        for address in addresses:  # one bad address refuses the name: no gambling on order
            # an operator's origin may be private (a gateway beside the server), never a
            # metadata or reserved address (a DNS answer the operator did not mean)
            if not trusted or address_kind(address) == NEVER:
                check_address(address, self.purpose)
        return addresses

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        error = None
        for address in self._addresses(host, port):
            left = max(self.deadline - time.monotonic(), 0.001)
            try:
                stream = network.connect_tcp(address, port, min(timeout or left, left), local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return _DeadlineStream(stream, self.deadline)
        raise error

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise AddressRefused("Unix sockets are never called.")

    def sleep(self, seconds):
        network.sleep(seconds)


def ssl_context():
    """The TLS settings of guarded calls (httpx's defaults: certifi, hostname checks on)."""
    return httpx.create_ssl_context()


class _PinnedTransport(httpx.HTTPTransport):
    def __init__(self, backend: _PinnedBackend):
        context = ssl_context()
        super().__init__(verify=context, trust_env=False)
        # httpx does not take a network backend, so its pool is replaced by one that has ours
        # (httpx is pinned in requirements.txt; tests/test_guarded_fetch.py proves the seam).
        self._pool = httpcore.ConnectionPool(ssl_context=context, network_backend=backend, max_connections=4)


def _client(target: Target, limits: Limits) -> httpx.Client:
    _scheme, host, port = origin(target.url)
    backend = _PinnedBackend(target.purpose, (host, port) if target.trusted else None, time.monotonic() + limits.total)
    timeout = httpx.Timeout(limits.total, connect=limits.connect)
    return httpx.Client(transport=_PinnedTransport(backend), timeout=timeout, follow_redirects=False, trust_env=False)


# --- calls -------------------------------------------------------------------------------------
def _hop(client: httpx.Client, method: str, url: str, target: Target, first: bool, **kwargs) -> httpx.Response:
    own = origin(url) == origin(target.url)  # credentials never leave the origin they are for
    request = client.build_request(method, url, params=target.params if first else None,
                                   headers=target.headers if own else None, **kwargs)
    return client.send(request, auth=target.auth if own else None, stream=True)


def _next_url(response: httpx.Response) -> httpx.URL:
    location = response.headers.get("location", "")
    return parse_url(str(response.request.url.join(location)))


def _send(client: httpx.Client, method: str, target: Target, **kwargs) -> httpx.Response:
    """Send, following redirects by hand for media GETs (each hop parsed and, on connecting,
    checked again); the last answer's body is not read yet."""
    redirects = MAX_REDIRECTS if target.purpose == MEDIA and method == "GET" else 0
    url = str(parse_url(target.url))
    for hop in range(redirects + 1):
        response = _hop(client, method, url, target, hop == 0, **kwargs)
        if not (response.has_redirect_location and redirects):
            return response
        response.close()
        url = str(_next_url(response))
    raise FetchError(f"More than {redirects} redirects.")


class _Download:
    """A streamed answer: status_code, headers, chunks() — capped; close() when done."""

    def __init__(self, client: httpx.Client, response: httpx.Response, limits: Limits):
        self.client, self.response, self.limits = client, response, limits
        self.status_code, self.headers = response.status_code, response.headers

    def chunks(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self.response.iter_bytes():
            seen += len(chunk)
            if seen > self.limits.max_bytes:
                raise TooLarge(f"The answer is larger than {self.limits.max_bytes} bytes.")
            yield chunk

    def close(self) -> None:
        self.response.close()
        self.client.close()


def _declared_length(response: httpx.Response) -> int:
    try:
        return int(response.headers.get("content-length") or 0)
    except ValueError:
        return 0


def open_stream(method: str, target: Target, *, limits: Limits = Limits(), **kwargs) -> _Download:
    """Call `target` (kwargs: json= or content=) and return the answer with its body unread.
    Raises AddressRefused, FetchError or httpx.HTTPError; close() the result."""
    parse_url(target.url)
    client = _client(target, limits)
    try:
        response = _send(client, method, target, **kwargs)
        if _declared_length(response) > limits.max_bytes:
            response.close()
            raise TooLarge(f"The answer is larger than {limits.max_bytes} bytes.")
        return _Download(client, response, limits)
    except BaseException:
        client.close()
        raise


def request(method: str, target: Target, *, limits: Limits = Limits(), **kwargs) -> httpx.Response:
    """One guarded call with its body read (at most limits.max_bytes): an httpx.Response."""
    download = open_stream(method, target, limits=limits, **kwargs)
    try:
        body = b"".join(download.chunks())
    finally:
        download.close()
    # the body is decoded already: the copy must not announce an encoding or a length
    dropped = ("content-encoding", "content-length", "transfer-encoding")
    headers = [(k, v) for k, v in download.headers.multi_items() if k.lower() not in dropped]
    return httpx.Response(download.status_code, headers=headers, content=body, request=download.response.request)


def first_bytes(download: _Download, size: int) -> bytes:
    """Up to `size` bytes of the answer (an excerpt for a log), the rest never read."""
    excerpt = b""
    for chunk in download.response.iter_bytes():
        excerpt += chunk
        if len(excerpt) >= size:
            break
    return excerpt[:size]
