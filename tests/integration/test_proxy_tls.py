"""The proxy's certificate reload and headers (berth/deploy/proxy_tls.js), and its TLS-ALPN-01
answers (proxy_alpn.js), in the real configurable-http-proxy (and Node) of the `berth/hub` image,
in front of an upstream that behaves like a hostile user server. No deployment: one container,
a loopback port.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import http.client
import io
import socket
import ssl
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from polling import wait_logged, wait_until

from berth import tls
from berth.acme import alpn

pytestmark = pytest.mark.integration

PRELOAD = Path(__file__).resolve().parents[2] / "berth" / "deploy" / "proxy_tls.js"
ALPN_PRELOAD = PRELOAD.with_name("proxy_alpn.js")
# A user server that tries to switch HSTS off for everyone, and to pin other hosts.
UPSTREAM = """
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("strict-Transport-Security", "max-age=0")
        self.send_header("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", 9000), H).serve_forever()
"""


def ca_issued(name: str) -> tls.KeyPair:
    """A certificate as an authority issues it (issuer != subject)."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test authority")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return tls.KeyPair(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in sorted({str(Path(p).parent) for p in files} | {"t"}):
            info = tarfile.TarInfo(directory)  # owned by the image's user, who renames in it
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, 1000, 100
            tar.addfile(info)
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.uid, info.gid = len(data), 0o600, 1000, 100
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def proxy() -> Iterator[tuple[object, int]]:
    client = docker.from_env()
    try:
        client.images.get("berth/hub:latest")
    except docker.errors.ImageNotFound:
        pytest.skip("berth/hub:latest is not built")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = ["self-signed.test", "127.0.0.1"]
    pair = tls.self_signed(start)
    script = (
        "python3 /tmp/t/upstream.py & exec configurable-http-proxy --ip 0.0.0.0 --port 8443"
        " --ssl-key /tmp/t/tls/key.pem --ssl-cert /tmp/t/tls/cert.pem"
        " --default-target http://127.0.0.1:9000"
    )
    container = client.containers.create(
        "berth/hub:latest", name=f"berth-test-proxy-tls-{uuid.uuid4().hex[:8]}",
        entrypoint=["sh", "-c", script], ports={"8443/tcp": ("127.0.0.1", port)},
        environment={"NODE_OPTIONS": "--require /tmp/t/proxy_tls.js",
                     "BERTH_TLS_CERT": "/tmp/t/tls/cert.pem", "BERTH_TLS_KEY": "/tmp/t/tls/key.pem",
                     "BERTH_TLS_POLL_MS": "500", "CONFIGPROXY_AUTH_TOKEN": "test",
                     "BERTH_TLS_ALPN_DIR": "/tmp/t/tls/alpn"},
        labels={"berth-test": "proxy-tls"},
    )  # fmt: skip
    try:
        container.put_archive("/tmp", tar_of({
            "t/proxy_tls.js": PRELOAD.read_bytes(), "t/proxy_alpn.js": ALPN_PRELOAD.read_bytes(),
            "t/upstream.py": UPSTREAM.encode(),
            "t/tls/cert.pem": pair.cert_pem, "t/tls/key.pem": pair.key_pem,
        }))  # fmt: skip
        container.start()
        wait_serving(container, port, 60)
        yield container, port
    finally:
        container.remove(force=True)
        client.close()


def wait_serving(container, port: int, timeout: float) -> None:
    """Until a browser's request through the proxy gets the upstream's 200. The preload logs
    "watching" as the server is created, before configurable-http-proxy listens, so that line
    alone left a test's first connect to race the listen (refused once in CI)."""
    wait_logged(container, "watching", timeout)

    def answers() -> bool:
        try:
            with contextlib.closing(Connection(port)) as connection:
                return connection.get().status == 200
        except (OSError, http.client.HTTPException):
            return False

    wait_until(answers, timeout, lambda: container.logs().decode(), step=0.2)


def install(container, pair: tls.KeyPair, key_first_pause: float = 1.5) -> None:
    """As berth-acme installs: the key, then the chain, each replaced atomically. The pause
    lets the preload see the new key with the old chain first, as it may in a deployment;
    what it then loads is waited for with wait_logged (the preload looks every 500 ms, which a
    loaded machine stretches), not with a pause."""
    container.put_archive("/tmp", tar_of({"t/new/cert.pem": pair.cert_pem,
                                          "t/new/key.pem": pair.key_pem}))  # fmt: skip
    for name in ("key.pem", "cert.pem"):
        move = f"import os; os.replace('/tmp/t/new/{name}', '/tmp/t/tls/{name}')"
        assert container.exec_run(["python3", "-c", move]).exit_code == 0
        time.sleep(key_first_pause)


class Connection(http.client.HTTPSConnection):
    def __init__(self, port: int) -> None:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        super().__init__("127.0.0.1", port, timeout=10, context=context)

    def get(self) -> http.client.HTTPResponse:
        self.request("GET", "/")
        answer = self.getresponse()
        answer.read()
        return answer

    def fingerprint(self) -> str:
        return hashlib.sha256(self.sock.getpeercert(binary_form=True)).hexdigest()


@contextlib.contextmanager
def kept_alive(connection: Connection) -> Iterator[list[tuple[int, str]]]:
    """Asks for "/" on `connection` every second, in a thread, while the block runs: the
    server closes a connection idle for 5 s (Node's keep-alive timeout), and the block's
    engine calls (an archive, two execs, the reload) can take longer than that on a loaded
    machine. Yields each answer's (status, certificate fingerprint); a failed request is
    raised when the block ends."""
    answers: list[tuple[int, str]] = []
    failures: list[Exception] = []
    stop = threading.Event()

    def ask() -> None:
        try:
            while not stop.wait(1.0):
                answers.append((connection.get().status, connection.fingerprint()))
        except (OSError, http.client.HTTPException) as exc:
            failures.append(exc)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    try:
        yield answers
    finally:
        stop.set()
        thread.join(30)
    if failures:
        raise AssertionError(f"the open connection failed: {failures[0]!r}") from failures[0]


def test_a_new_certificate_reaches_new_connections_and_open_ones_stay(proxy):
    container, port = proxy
    held = Connection(port)
    assert held.get().status == 200
    before = held.fingerprint()
    issued = ca_issued("hub.example.org")
    with kept_alive(held) as answers:  # the held connection answers throughout
        install(container, issued)
        wait_logged(container, "serving a new certificate to new connections")
    assert answers and set(answers) == {(200, before)}, answers
    assert held.get().status == 200 and held.fingerprint() == before
    fresh = Connection(port)
    fresh.get()
    served = x509.load_der_x509_certificate(fresh.sock.getpeercert(binary_form=True))
    assert served == x509.load_pem_x509_certificate(issued.cert_pem)
    held.close()
    fresh.close()


def test_a_key_that_does_not_fit_is_not_loaded(proxy):
    container, port = proxy
    before = Connection(port)
    before.get()
    wrong = tls.KeyPair(ca_issued("a.example.org").cert_pem, tls.self_signed(["b"]).key_pem)
    install(container, wrong)
    # Refused twice: the new key with the old chain, then with the chain that does not fit
    # it. The second refusal means the preload has looked at the pair as installed.
    wait_logged(container, "not loading the new certificate yet", count=2)
    after = Connection(port)
    assert after.get().status == 200 and after.fingerprint() == before.fingerprint()


def test_hsts_is_the_proxys_alone(proxy):
    """An upstream (a user's server) cannot clear HSTS with max-age=0 nor widen it with
    includeSubDomains; with a self-signed certificate there is none at all. Fails before
    this change (no preload: the upstream's header went straight to the browser)."""
    container, port = proxy
    first = Connection(port).get()
    assert first.getheader("Strict-Transport-Security") is None
    assert first.getheader("X-Content-Type-Options") == "nosniff"
    install(container, ca_issued("hub.example.org"))
    wait_logged(container, "serving a new certificate to new connections")
    answer = Connection(port).get()
    assert answer.headers.get_all("Strict-Transport-Security") == ["max-age=31536000"]
    assert answer.getheader("Referrer-Policy") == "strict-origin-when-cross-origin"


def handshake(port: int, name: str, protocols: list[str], piece: int = 0) -> ssl.SSLObject:
    """A TLS handshake by hand (memory BIOs), its ClientHello sent in `piece`-byte segments
    when `piece` is given, as a slow or hostile client may."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if protocols:
        context.set_alpn_protocols(protocols)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_object = context.wrap_bio(incoming, outgoing, server_hostname=name)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        for _ in range(50):  # bounded: a handshake is a few round trips
            try:
                tls_object.do_handshake()
                return tls_object
            except ssl.SSLWantReadError:
                data = outgoing.read()
                step = piece or len(data) or 1
                for start in range(0, len(data), step):
                    raw.sendall(data[start : start + step])
                    if piece:
                        time.sleep(0.01)
                received = raw.recv(65536)
                if not received:
                    raise ConnectionResetError("the proxy closed the connection") from None
                incoming.write(received)
    raise AssertionError("no handshake")


def served(tls_object: ssl.SSLObject) -> x509.Certificate:
    return x509.load_der_x509_certificate(tls_object.getpeercert(binary_form=True))


def is_challenge(cert: x509.Certificate) -> bool:
    return any(e.oid == alpn.ACME_IDENTIFIER for e in cert.extensions)


def test_acme_tls_1_alone_gets_the_challenge_certificate(proxy):
    """The authority's `acme-tls/1` handshake for a name with a challenge gets its certificate,
    even with the ClientHello cut into 7-byte segments; every other handshake (browsers' ALPN,
    none, another name, a name that tries to leave the directory) never does. Fails before
    this change (no TLS-ALPN-01 at all: the proxy's certificate answered `acme-tls/1` too)."""
    container, port = proxy
    name = "hub.example.org"
    pem = alpn.challenge_pem(name, "token.thumbprint")
    # Also one a path with a slash in the client's SNI would reach, were it not refused.
    container.put_archive("/tmp", tar_of({f"t/tls/alpn/{name}.pem": pem,
                                          f"t/tls/alpn/alpn/{name}.pem": pem}))  # fmt: skip
    for piece in (0, 7):
        answer = handshake(port, name, ["acme-tls/1"], piece)
        assert answer.selected_alpn_protocol() == "acme-tls/1"
        assert is_challenge(served(answer))
        assert served(answer).extensions.get_extension_for_oid(
            alpn.ACME_IDENTIFIER
        ).value.value == alpn.acme_identifier("token.thumbprint")
    for protocols in (["h2", "http/1.1"], ["http/1.1"], []):
        for piece in (0, 7):
            answer = handshake(port, name, protocols, piece)
            assert not is_challenge(served(answer)), (protocols, piece)
            assert answer.selected_alpn_protocol() in (None, "http/1.1")
    for other in ("other.example.org", "alpn/hub.example.org", "HUB.example.org."):
        try:
            answer = handshake(port, other, ["acme-tls/1"])
        except (ssl.SSLError, OSError):
            continue  # refused: no challenge for that name
        # Only the same name in other letters may match (DNS names are case-insensitive).
        assert other == "HUB.example.org." and is_challenge(served(answer)), other
    assert Connection(port).get().status == 200  # the proxy is still serving browsers
    wait_logged(container, f"answering acme-tls/1 for {name}")


def test_bytes_that_are_not_tls_go_to_the_proxys_own_server(proxy):
    """Plain HTTP or garbage on the HTTPS port is refused by the proxy's TLS server as before,
    and a client that sends nothing holds no more than its own connection."""
    container, port = proxy
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)
    for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\xff\xff" + b"\x00" * 64):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(junk)
            raw.shutdown(socket.SHUT_WR)
            with contextlib.suppress(ConnectionResetError):
                assert not raw.recv(4096).startswith(b"HTTP/1.1 200")
    assert Connection(port).get().status == 200
    idle.close()
    container.reload()
    assert container.status == "running"
