"""berth-acme's loop (`python -m berth.acme.service`) against a real ACME server: Pebble on
loopback, really validating HTTP-01 and TLS-ALPN-01 through a loopback resolver
(tests/acme_pebble.py). TLS-ALPN-01 is answered by the proxy's preload
(berth/deploy/proxy_tls.js, proxy_alpn.js) in Node on this machine.

No engine and no deployment: the containers around them are tested in test_acme_deploy.py.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from acme_pebble import LoopbackPebble, free_port, loopback_pebble
from cryptography import x509

from berth import tls

pytestmark = pytest.mark.integration

VALIDITY = 45  # seconds: Pebble's certificates renew after 30 of them
NAME = "hub.berth.test"


@pytest.fixture(scope="module")
def pebble(tmp_path_factory) -> Iterator[LoopbackPebble]:
    with loopback_pebble(tmp_path_factory.mktemp("pebble"), VALIDITY) as found:
        yield found


class Keeper:
    """One berth-acme loop as a process, with its tls dir and state dir."""

    def __init__(
        self,
        pebble: LoopbackPebble,
        workdir: Path,
        names: list[str],
        http_port: int,
        challenge: str = "http-01",
    ):
        self.tls_dir, self.state = workdir / "tls", workdir / "state"
        self.tls_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "BERTH_ACME_DIRECTORY_CA": pebble.ca.read_text()}
        command = [
            sys.executable, "-m", "berth.acme.service", "--directory", pebble.directory,
            "--email", "ops@example.org", "--http-port", str(http_port), "--https-port", "8443",
            "--tls-dir", str(self.tls_dir), "--state", str(self.state), "--retry-first", "2",
            "--challenge", challenge,
        ]  # fmt: skip
        for name in names:
            command += ["--name", name]
        self.log = workdir / "acme.log"
        self.process = subprocess.Popen(
            command, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT
        )

    def status(self) -> dict:
        try:
            return json.loads((self.state / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait(self, probe, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.5)
        raise AssertionError(f"{what} within {timeout}s: {self.status()}\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def verify_chain(chain_pem: bytes, root_pem: bytes, name: str) -> None:
    """What a browser that trusts Pebble's root does: the served chain verifies for the name."""
    from cryptography.x509.verification import PolicyBuilder, Store

    certs = x509.load_pem_x509_certificates(chain_pem)
    store = Store(x509.load_pem_x509_certificates(root_pem))
    verifier = PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name))
    verifier.verify(certs[0], certs[1:])


def test_first_issuance_then_renewal_before_expiry(pebble, tmp_path):
    keeper = Keeper(pebble, tmp_path, [NAME], pebble.http_port)
    try:
        first = keeper.wait(
            lambda: keeper.status().get("state") == "valid" and keeper.status(),
            60,
            "no certificate",
        )
        chain = (keeper.tls_dir / "cert.pem").read_bytes()
        verify_chain(chain, pebble.root(), NAME)
        assert first["serving"] == "acme" and first["failures"] == 0
        for name in ("cert.pem", "key.pem"):  # the key and certificate: owner only
            assert (keeper.tls_dir / name).stat().st_mode & 0o777 == 0o600
        assert (keeper.state / "account-key.pem").stat().st_mode & 0o777 == 0o600
        tls.check_pair(chain, (keeper.tls_dir / "key.pem").read_bytes(), "issued")
        # Renewal: a new certificate before the first expires (a third of its life left). It
        # starts 30 s into the first one's life and takes a whole order: the wait is generous,
        # the check that it came before expiry is the assertion below.
        old = x509.load_pem_x509_certificates(chain)[0]
        renewed = keeper.wait(
            lambda: (keeper.tls_dir / "cert.pem").read_bytes() != chain, VALIDITY + 90, "no renewal"
        )
        assert renewed
        new_chain = (keeper.tls_dir / "cert.pem").read_bytes()
        new = x509.load_pem_x509_certificates(new_chain)[0]
        assert old.not_valid_after_utc > new.not_valid_before_utc  # renewed before expiry
        verify_chain(new_chain, pebble.root(), NAME)
        tls.check_pair(new_chain, (keeper.tls_dir / "key.pem").read_bytes(), "renewed")
    finally:
        keeper.stop()


def test_a_failing_challenge_keeps_the_served_certificate_and_backs_off(pebble, tmp_path):
    """The authority cannot reach the challenge (nothing answers on the port it validates):
    the reason is in the status and the log, the certificate in place is not touched, and
    the attempts space out."""
    stand_in = tls.self_signed(["broken.berth.test"])
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "cert.pem").write_bytes(stand_in.cert_pem)
    (tmp_path / "tls" / "key.pem").write_bytes(stand_in.key_pem)
    keeper = Keeper(pebble, tmp_path, ["broken.berth.test"], free_port())  # not Pebble's port
    try:
        failing = keeper.wait(lambda: keeper.status().get("failures", 0) >= 3 and keeper.status(),
                              60, "no three failures")  # fmt: skip
        assert failing["state"] == "failing"
        assert failing["serving"] == "self-signed"
        assert "the challenge failed: broken.berth.test: http-01" in failing["last_error"]
        assert "connection refused" in failing["last_error"]
        assert (tmp_path / "tls" / "cert.pem").read_bytes() == stand_in.cert_pem
        failures = [line.split()[0] for line in failing["history"] if "failed" in line]
        times = [time.mktime(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) for t in failures]
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert gaps[0] >= 2 - 1 and gaps[1] >= 4 - 1, gaps  # 2 s, then 4 s (whole seconds)
        log = keeper.log.read_text()
        assert "could not get a certificate (attempt 1): the challenge failed" in log
        assert "keeping the served certificate" in log
    finally:
        keeper.stop()


def test_an_untrusted_directory_is_refused_with_what_to_check(pebble, tmp_path):
    """Without tls.acme.directory_ca, Pebble's HTTPS is not trusted: nothing is sent to it,
    and the reason names the setting."""
    ca = pebble.ca
    pebble.ca = tmp_path / "unrelated-ca.pem"
    pebble.ca.write_bytes(tls.self_signed(["unrelated"]).cert_pem)
    try:
        keeper = Keeper(pebble, tmp_path, [NAME], pebble.http_port)
    finally:
        pebble.ca = ca
    try:
        status = keeper.wait(lambda: keeper.status().get("last_error") and keeper.status(), 30,
                             "no failure")  # fmt: skip
        assert status["last_error"].startswith("cannot verify the HTTPS certificate of")
        assert "tls.acme.directory_ca" in status["last_error"]
        assert not (keeper.tls_dir / "cert.pem").exists()
    finally:
        keeper.stop()


PRELOAD = Path(__file__).resolve().parents[2] / "berth" / "deploy" / "proxy_tls.js"
HTTPS_SERVER = """
const fs = require("fs");
const [key, cert, port] = process.argv.slice(1);
require("https")
  .createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (q, s) => s.end("ok"))
  .listen(Number(port), "127.0.0.1");
"""


def served_certificate(port: int, name: str, protocols: list[str]) -> x509.Certificate:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_alpn_protocols(protocols)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(raw, server_hostname=name) as connection:
        return x509.load_der_x509_certificate(connection.getpeercert(binary_form=True))


def test_tls_alpn_01_is_answered_on_the_https_port_with_port_80_closed(pebble, tmp_path):
    """No HTTP port at all (http-01 cannot work: nothing listens where Pebble validates it):
    berth-acme writes the TLS-ALPN-01 certificate, the HTTPS server's preload shows it to
    Pebble's `acme-tls/1` handshake, and the issued certificate then replaces the self-signed
    one on that same server without a restart. Fails before this change (berth-acme answered
    HTTP-01 only: "the authority offers no HTTP-01" was never the problem, the port was)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on this machine (apt-get install nodejs)")
    stand_in = tls.self_signed([NAME])
    (tmp_path / "tls").mkdir()
    cert, key = tmp_path / "tls" / "cert.pem", tmp_path / "tls" / "key.pem"
    cert.write_bytes(stand_in.cert_pem)
    key.write_bytes(stand_in.key_pem)
    env = {**os.environ, "NODE_OPTIONS": f"--require {PRELOAD}", "BERTH_TLS_CERT": str(cert),
           "BERTH_TLS_KEY": str(key), "BERTH_TLS_POLL_MS": "300",
           "BERTH_TLS_ALPN_DIR": str(tmp_path / "tls" / "alpn")}  # fmt: skip
    server_log = tmp_path / "https.log"
    server = subprocess.Popen(
        [node, "-e", HTTPS_SERVER, str(key), str(cert), str(pebble.tls_port)],
        env=env, stdout=server_log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    keeper = Keeper(pebble, tmp_path, [NAME], free_port(), challenge="tls-alpn-01")
    try:
        status = keeper.wait(lambda: keeper.status().get("state") == "valid" and keeper.status(),
                             60, "no certificate")  # fmt: skip
        assert status["challenge"] == "tls-alpn-01" and status["serving"] == "acme"
        assert status["history"][-1].endswith("issued (tls-alpn-01)")
        chain = cert.read_bytes()
        verify_chain(chain, pebble.root(), NAME)
        issued = x509.load_pem_x509_certificates(chain)[0]
        keeper.wait(lambda: served_certificate(pebble.tls_port, NAME, ["http/1.1"]) == issued,
                    10, "the HTTPS server does not serve the issued certificate")  # fmt: skip
        log = server_log.read_text()
        assert f"answering acme-tls/1 for {NAME}" in log, log
        # The challenge certificates are gone once the order is done: an `acme-tls/1`
        # handshake now finds nothing (a browser's never did).
        assert list((tmp_path / "tls" / "alpn").iterdir()) == []
        with pytest.raises((ssl.SSLError, OSError)):
            served_certificate(pebble.tls_port, NAME, ["acme-tls/1"])
    finally:
        keeper.stop()
        server.terminate()
        server.wait(timeout=10)
