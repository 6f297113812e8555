"""whatsnap/guarded_fetch.py on its own: the address classifier, URL forms, redirects re-checked
hop by hop, DNS rebinding, TLS for the URL's name while connected to the checked address, and
the size and time caps. tests/test_guarded_paths.py drives every fetch path of the product.

Nothing leaves 127.0.0.1: a made-up public name is given its address by the module's own
resolver seam (`resolve`), and connections to made-up public addresses are routed to loopback
servers by a stand-in for the internet put in place of the module's socket layer (`network`)."""
import datetime
import re
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore
import httpx
import pytest

from whatsnap import guarded_fetch
from whatsnap.guarded_fetch import GATEWAY, MEDIA, WEBHOOKS, AddressRefused, Limits, Target, TooLarge

PUBLIC_IP, OTHER_PUBLIC_IP = "93.184.216.34", "93.184.216.35"  # made up for the tests: never dialled for real


# --- a loopback site and a make-believe internet ----------------------------------------------
class Site:
    """A loopback HTTP(S) server: routes map a path to (status, headers, body); a body given as
    a list is written chunk by chunk, `delay` seconds apart, with no length (read to close)."""

    def __init__(self, routes=None, *, tls=None, delay=0.0):
        self.routes, self.requests, self.delay = dict(routes or {}), [], delay
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                site.requests.append({"method": self.command, "path": self.path, "body": body,
                                      "headers": {k.lower(): v for k, v in self.headers.items()}})
                status, headers, payload = site.routes.get(self.path.split("?")[0], (404, {}, b"nothing here"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                site.write(self, payload)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def write(self, handler, payload) -> None:
        if isinstance(payload, bytes):
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        handler.send_header("Connection", "close")
        handler.end_headers()
        for chunk in payload:
            handler.wfile.write(chunk)
            handler.wfile.flush()
            time.sleep(self.delay)
        handler.close_connection = True

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Internet(httpcore.SyncBackend):
    """Routes made-up public addresses to loopback ports and records what was dialled; any
    other non-loopback address is unreachable (so a test can never reach the real one). Its
    `names` are the DNS: name -> addresses, or a function of how often the name was asked."""

    def __init__(self):
        self.routes: dict[tuple[str, int], int] = {}
        self.dialled: list[tuple[str, int]] = []
        self.names: dict = {}
        self.lookups: dict[str, int] = {}

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.dialled.append((host, port))
        if host not in ("127.0.0.1", "::1"):
            if (host, port) not in self.routes:
                raise httpcore.ConnectError(f"{host}:{port} is not on the test's internet")
            host, port = "127.0.0.1", self.routes[(host, port)]
        return super().connect_tcp(host, port, timeout, local_address, socket_options)


@pytest.fixture
def internet(monkeypatch):
    net, system = Internet(), guarded_fetch.resolve

    def resolve(host, port):
        net.lookups[host] = net.lookups.get(host, 0) + 1
        answer = net.names.get(host)
        if callable(answer):
            return answer(net.lookups[host])
        if answer:
            return list(answer)
        # addresses written out (in any form) and localhost are answered without asking DNS
        return system(host, port) if host == "localhost" or re.fullmatch(r"[0-9a-fA-FxX.:]+", host) else []

    monkeypatch.setattr(guarded_fetch, "network", net)
    monkeypatch.setattr(guarded_fetch, "resolve", resolve)
    return net


@pytest.fixture
def strict(settings):
    """Private addresses refused for every purpose, as in production by default."""
    settings.GATEWAY_ALLOW_PRIVATE_URLS = settings.MEDIA_ALLOW_PRIVATE_URLS = settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False


@pytest.fixture
def site():
    server = Site()
    yield server
    server.stop()


def public_site(internet, site, name="files.example", address=PUBLIC_IP, port=80):
    """`site` reachable as http://<name>/ at a made-up public address."""
    internet.names[name] = [address]
    internet.routes[(address, port)] = site.port
    return f"http://{name}"


# --- the classifier -----------------------------------------------------------------------------
@pytest.mark.parametrize("address, kind", [
    ("8.8.8.8", "public"), ("2606:4700:4700::1111", "public"), ("64:ff9b::808:808", "public"),
    ("127.0.0.1", "private"), ("127.5.5.5", "private"), ("::1", "private"), ("10.1.2.3", "private"),
    ("172.16.0.1", "private"), ("192.168.1.20", "private"), ("100.64.0.1", "private"), ("169.254.1.1", "private"),
    ("fc00::1", "private"), ("fd12:3456::1", "private"), ("fe80::1", "private"), ("192.0.2.1", "private"),
    ("::ffff:127.0.0.1", "private"), ("::ffff:10.0.0.1", "private"), ("::ffff:7f00:1", "private"),
    ("2002:7f00:1::", "private"), ("64:ff9b::a00:1", "private"), ("fe80::1%eth0", "private"),
    ("169.254.169.254", "never"), ("::ffff:169.254.169.254", "never"), ("fd00:ec2::254", "never"),
    ("100.100.100.200", "never"), ("0.0.0.0", "never"), ("0.1.2.3", "never"), ("::", "never"),
    ("224.0.0.1", "never"), ("ff02::1", "never"), ("240.0.0.1", "never"), ("255.255.255.255", "never"),
    ("::7f00:1", "never"),
])
def test_address_kind(address, kind):
    assert guarded_fetch.address_kind(address) == kind


@pytest.mark.parametrize("purpose, setting", [(GATEWAY, "GATEWAY_ALLOW_PRIVATE_URLS"), (MEDIA, "MEDIA_ALLOW_PRIVATE_URLS"),
                                              (WEBHOOKS, "WEBHOOKS_ALLOW_PRIVATE_URLS")])
def test_each_purpose_has_its_own_switch_and_metadata_is_never_allowed(settings, strict, purpose, setting):
    problem = guarded_fetch.address_problem("http://192.168.1.20:8080/", purpose=purpose)
    assert problem.startswith("The address points to a private network (192.168.1.20);") and setting in problem
    setattr(settings, setting, True)
    assert guarded_fetch.address_problem("http://192.168.1.20:8080/", purpose=purpose) == ""
    others = [p for p in (GATEWAY, MEDIA, WEBHOOKS) if p != purpose]
    assert all(guarded_fetch.address_problem("http://192.168.1.20/", purpose=p) for p in others)
    assert "metadata" in guarded_fetch.address_problem("http://169.254.169.254/latest/meta-data/", purpose=purpose)


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://2130706433/", "http://0x7f.1/", "http://127.1/", "http://0x7f000001/",
                                 "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://localhost/",
                                 "http://0.0.0.0/", "https://10.0.0.1:8443/"])
def test_loopback_in_any_spelling_is_refused(strict, url):
    # the decimal and hex forms are valid URLs to httpx and the system resolver reads them as
    # 127.0.0.1 without asking DNS: the check judges what the name resolves to, not its spelling
    assert "The address points to" in guarded_fetch.address_problem(url, purpose=MEDIA)
    with pytest.raises(AddressRefused):
        guarded_fetch.request("GET", Target(url))


@pytest.mark.parametrize("url, reason", [
    ("ftp://files.example/a", "http:// or https://"), ("file:///etc/passwd", "http:// or https://"),
    ("gopher://127.0.0.1:6379/_INFO", "http:// or https://"), ("http:///path", "naming a host"),
    ("http://user:pw@files.example/", "user name or password"), ("http://files.example@127.0.0.1/", "user name or password"),
    ("http://0177.0.0.1/", "not a valid URL"), ("not a url", "http:// or https://"),
])
def test_only_plain_http_urls(url, reason):
    with pytest.raises(AddressRefused, match=reason):
        guarded_fetch.parse_url(url)
    assert reason in guarded_fetch.address_problem(url, purpose=MEDIA)


def test_a_name_with_one_private_address_among_public_ones_is_refused(internet, strict):
    internet.names["mixed.example"] = [PUBLIC_IP, "10.0.0.7"]
    assert "10.0.0.7" in guarded_fetch.address_problem("http://mixed.example/", purpose=WEBHOOKS)
    with pytest.raises(AddressRefused):
        guarded_fetch.request("GET", Target("http://mixed.example/"))
    assert internet.dialled == []


def test_allowed_private_addresses_are_reached(site, settings):
    site.routes["/ok"] = (200, {"Content-Type": "text/plain"}, b"fine")
    settings.MEDIA_ALLOW_PRIVATE_URLS = True
    answer = guarded_fetch.request("GET", Target(site.url + "/ok"))
    assert (answer.status_code, answer.content, answer.headers["content-type"]) == (200, b"fine", "text/plain")


# --- redirects ----------------------------------------------------------------------------------
def test_a_redirect_from_a_public_host_to_loopback_is_refused(internet, site, strict):
    inside = Site({"/secret": (200, {}, b"metadata credentials")})
    try:
        site.routes["/a.jpg"] = (302, {"Location": f"{inside.url}/secret"}, b"")
        with pytest.raises(AddressRefused, match=r"private network \(127\.0\.0\.1\)"):
            guarded_fetch.request("GET", Target(public_site(internet, site) + "/a.jpg"))
        assert site.paths() == ["/a.jpg"] and inside.requests == []
    finally:
        inside.stop()


def test_a_redirect_to_a_name_that_resolves_inside_is_refused(internet, site, strict):
    internet.names["intranet.example"] = ["10.0.0.5"]
    site.routes["/a.jpg"] = (301, {"Location": "http://intranet.example/admin"}, b"")
    with pytest.raises(AddressRefused, match=r"10\.0\.0\.5"):
        guarded_fetch.request("GET", Target(public_site(internet, site) + "/a.jpg"))
    assert internet.dialled == [(PUBLIC_IP, 80)]


def test_redirects_are_followed_a_few_times_and_credentials_stay_with_their_origin(internet, site, strict):
    cdn = Site({"/file": (200, {"Content-Type": "image/png"}, b"png bytes")})
    try:
        public_site(internet, cdn, name="cdn.example", address=OTHER_PUBLIC_IP)
        site.routes["/media"] = (307, {"Location": "/media2"}, b"")
        site.routes["/media2"] = (302, {"Location": "http://cdn.example/file"}, b"")
        target = Target(public_site(internet, site) + "/media", auth=("AC1", "token"), headers={"X-Api-Key": "k"})
        answer = guarded_fetch.request("GET", target, limits=Limits(max_bytes=1000))
        assert answer.content == b"png bytes"
        assert [r["headers"].get("authorization", "")[:6] for r in site.requests] == ["Basic ", "Basic "]  # same origin
        [fetched] = cdn.requests
        assert "authorization" not in fetched["headers"] and "x-api-key" not in fetched["headers"]
        assert fetched["headers"]["host"] == "cdn.example"
    finally:
        cdn.stop()


def test_redirect_loops_stop(internet, site, strict):
    site.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(guarded_fetch.FetchError, match="More than 5 redirects"):
        guarded_fetch.request("GET", Target(public_site(internet, site) + "/loop"))
    assert len(site.requests) == 6


def test_device_and_webhook_calls_follow_no_redirect(internet, site, strict):
    site.routes["/api/v1/ping"] = (302, {"Location": "http://127.0.0.1:1/"}, b"")
    for purpose in (GATEWAY, WEBHOOKS):
        answer = guarded_fetch.request("GET", Target(public_site(internet, site) + "/api/v1/ping", purpose=purpose))
        assert answer.status_code == 302
    assert internet.dialled == [(PUBLIC_IP, 80), (PUBLIC_IP, 80)]


# --- DNS rebinding ------------------------------------------------------------------------------
def test_dns_rebinding_cannot_swap_in_an_unchecked_address(internet, site, strict):
    """The name answers a public address first and loopback after: the check and the
    connection use the one answer, so loopback is never dialled."""
    inside = Site({"/": (200, {}, b"inside")})
    try:
        site.routes["/"] = (200, {}, b"outside")
        internet.routes[(PUBLIC_IP, inside.port)] = site.port
        internet.names["rebind.example"] = lambda call: [PUBLIC_IP] if call == 1 else ["127.0.0.1"]
        answer = guarded_fetch.request("GET", Target(f"http://rebind.example:{inside.port}/"))
        assert answer.content == b"outside" and inside.requests == []
        assert internet.dialled == [(PUBLIC_IP, inside.port)] and internet.lookups["rebind.example"] == 1
        # the next call looks the name up again: it is checked again, and refused
        with pytest.raises(AddressRefused):
            guarded_fetch.request("GET", Target(f"http://rebind.example:{inside.port}/"))
        assert inside.requests == []
    finally:
        inside.stop()


def test_the_host_header_is_the_urls_name(internet, site, strict):
    site.routes["/"] = (200, {}, b"ok")
    guarded_fetch.request("GET", Target(public_site(internet, site) + "/"))
    assert site.requests[0]["headers"]["host"] == "files.example"


# --- TLS: the certificate is checked for the URL's name, not the pinned address ---------------
def _certificates(tmp_path, name: str):
    """A throwaway CA and a certificate for `name` it signed: (CA file, server context, SNI seen)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def cert(subject, key, issuer, issuer_key, ca):
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = cert(ca_name, ca_key, ca_name, ca_key, True)
    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), key, ca_name, ca_key, False)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "key.pem")
    seen = []
    server.sni_callback = lambda sock, server_name, context: seen.append(server_name)
    return str(tmp_path / "ca.pem"), server, seen


@pytest.mark.parametrize("certified_name, works", [("files.example", True), ("someone-else.example", False)])
def test_tls_checks_the_certificate_of_the_urls_name(internet, strict, tmp_path, monkeypatch, certified_name, works):
    ca_file, server_context, sni = _certificates(tmp_path, certified_name)
    monkeypatch.setattr(guarded_fetch, "ssl_context", lambda: ssl.create_default_context(cafile=ca_file))
    site = Site({"/a.jpg": (200, {}, b"over tls")}, tls=server_context)
    try:
        url = public_site(internet, site, port=443).replace("http://", "https://") + "/a.jpg"
        if works:
            assert guarded_fetch.request("GET", Target(url)).content == b"over tls"
        else:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                guarded_fetch.request("GET", Target(url))
        assert sni == ["files.example"] and internet.dialled == [(PUBLIC_IP, 443)]
    finally:
        site.stop()


# --- caps ---------------------------------------------------------------------------------------
def test_an_answer_over_the_size_cap_is_refused_declared_or_not(internet, site, strict):
    site.routes["/declared"] = (200, {}, b"x" * 5000)
    site.routes["/streamed"] = (200, {}, [b"x" * 1000] * 5)
    base = public_site(internet, site)
    for path in ("/declared", "/streamed"):
        with pytest.raises(TooLarge):
            guarded_fetch.request("GET", Target(base + path), limits=Limits(max_bytes=4000))


def test_a_slow_answer_is_cut_at_the_total_deadline(internet, strict):
    slow = Site({"/drip": (200, {}, [b"."] * 50)}, delay=0.1)  # 5 s in all, each byte well within a read timeout
    try:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            guarded_fetch.request("GET", Target(public_site(internet, slow) + "/drip"), limits=Limits(connect=1.0, total=0.6))
        assert time.monotonic() - started < 2.0
    finally:
        slow.stop()


def test_trusted_origins_skip_the_address_check_only_for_themselves(site, strict):
    site.routes["/media"] = (302, {"Location": f"http://localhost:{site.port}/elsewhere"}, b"")
    site.routes["/ok"] = (200, {}, b"trusted")
    assert guarded_fetch.request("GET", Target(site.url + "/ok", trusted=True)).content == b"trusted"
    with pytest.raises(AddressRefused):  # same port, another origin (localhost): checked, refused
        guarded_fetch.request("GET", Target(site.url + "/media", trusted=True))


def test_a_trusted_origin_still_never_reaches_a_metadata_address(internet, strict):
    """The operator's gateway may sit on the private network, but a DNS answer pointing its
    name at the metadata service is refused before anything is sent (credentials included)."""
    internet.names["gateway.example"] = ["169.254.169.254"]
    with pytest.raises(AddressRefused, match="metadata"):
        guarded_fetch.request("GET", Target("http://gateway.example/api", trusted=True, auth=("u", "secret")))
    internet.names["gateway.example"] = ["10.0.0.7"]  # private: allowed for the operator's own origin
    with pytest.raises(httpx.ConnectError, match="not on the test's internet"):
        guarded_fetch.request("GET", Target("http://gateway.example/api", trusted=True))
