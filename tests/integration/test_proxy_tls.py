"""The proxy's certificate reload and headers (berth/deploy/proxy_tls.js) in the real
configurable-http-proxy of the `berth/hub` image, in front of an upstream that behaves like a
hostile user server. No deployment: one container, a loopback port.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import io
import socket
import ssl
import tarfile
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

from berth import tls

pytestmark = pytest.mark.integration

PRELOAD = Path(__file__).resolve().parents[2] / "berth" / "deploy" / "proxy_tls.js"
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
                     "BERTH_TLS_POLL_MS": "500", "CONFIGPROXY_AUTH_TOKEN": "test"},
        labels={"berth-test": "proxy-tls"},
    )  # fmt: skip
    try:
        container.put_archive("/tmp", tar_of({
            "t/proxy_tls.js": PRELOAD.read_bytes(), "t/upstream.py": UPSTREAM.encode(),
            "t/tls/cert.pem": pair.cert_pem, "t/tls/key.pem": pair.key_pem,
        }))  # fmt: skip
        container.start()
        deadline = time.monotonic() + 60
        while "watching" not in container.logs().decode():
            assert time.monotonic() < deadline, container.logs().decode()
            time.sleep(0.3)
        yield container, port
    finally:
        container.remove(force=True)
        client.close()


def install(container, pair: tls.KeyPair, key_first_pause: float = 1.5) -> None:
    """As berth-acme installs: the key, then the chain, each replaced atomically."""
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


def test_a_new_certificate_reaches_new_connections_and_open_ones_stay(proxy):
    container, port = proxy
    held = Connection(port)
    assert held.get().status == 200
    before = held.fingerprint()
    issued = ca_issued("hub.example.org")
    install(container, issued)  # the held connection answers throughout (keep-alive 5 s)
    assert held.get().status == 200 and held.fingerprint() == before
    fresh = Connection(port)
    fresh.get()
    served = x509.load_der_x509_certificate(fresh.sock.getpeercert(binary_form=True))
    assert served == x509.load_pem_x509_certificate(issued.cert_pem)
    assert "serving a new certificate to new connections" in container.logs().decode()
    held.close()
    fresh.close()


def test_a_key_that_does_not_fit_is_not_loaded(proxy):
    container, port = proxy
    before = Connection(port)
    before.get()
    wrong = tls.KeyPair(ca_issued("a.example.org").cert_pem, tls.self_signed(["b"]).key_pem)
    install(container, wrong)
    after = Connection(port)
    assert after.get().status == 200 and after.fingerprint() == before.fingerprint()
    assert "not loading the new certificate yet" in container.logs().decode()


def test_hsts_is_the_proxys_alone(proxy):
    """An upstream (a user's server) cannot clear HSTS with max-age=0 nor widen it with
    includeSubDomains; with a self-signed certificate there is none at all. Fails before
    this change (no preload: the upstream's header went straight to the browser)."""
    container, port = proxy
    first = Connection(port).get()
    assert first.getheader("Strict-Transport-Security") is None
    assert first.getheader("X-Content-Type-Options") == "nosniff"
    install(container, ca_issued("hub.example.org"))
    answer = Connection(port).get()
    assert answer.headers.get_all("Strict-Transport-Security") == ["max-age=31536000"]
    assert answer.getheader("Referrer-Policy") == "strict-origin-when-cross-origin"
