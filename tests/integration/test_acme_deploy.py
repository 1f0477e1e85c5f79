"""`berth up` with tls.acme against Pebble, validating for real through the published ports.

Pebble runs on this machine (tests/acme_pebble.py); berth-acme reaches its directory on the
gateway of berth-acme's network (a host address), and Pebble validates the names, which its
resolver answers with 127.0.0.1, on the ports the deployment publishes there: HTTP-01 on
`tls.acme.http_port` (berth-acme) and TLS-ALPN-01 on the HTTPS port (the proxy). A client
that trusts Pebble's root then sees a valid chain on the service's HTTPS port (what a browser
does once the root is trusted: tests/e2e/test_acme_browser.py); the certificate is renewed
while a connection and a login stay open; a challenge that fails leaves the previous
certificate served with the reason in `berth status` and in the hub's log.

Holds the deployment lock (tests/deployment.py) and needs `berth/hub` built from this tree.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterator

import docker
import pytest
import requests
from acme_deployment import ACME_NETWORK, NAME, acme_deployment
from acme_pebble import LoopbackPebble
from cryptography import x509
from deployment import PREFIX, Deployment
from engine_reports import granted_capabilities

pytestmark = pytest.mark.integration

BROKEN = "broken.berth.test"  # Pebble's resolver answers 127.0.0.2, where nothing listens
ALPN_NAME = "alpn.berth.test"
VALIDITY = 90  # seconds; renewed with 30 left


class Pinned(http.client.HTTPSConnection):
    """HTTPS to the published port on loopback, verified for `name` (as a browser would be)."""

    def __init__(self, port: int, root: bytes, name: str = NAME) -> None:
        super().__init__(name, port, timeout=20, context=ssl.create_default_context(
            cadata=root.decode()))  # fmt: skip

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)

    def get(self, path: str) -> http.client.HTTPResponse:
        self.request("GET", path)
        answer = self.getresponse()
        answer.read()
        return answer

    def serial(self) -> int:
        return x509.load_der_x509_certificate(self.sock.getpeercert(binary_form=True)).serial_number


@pytest.fixture(scope="module")
def acme(tmp_path_factory) -> Iterator[tuple[Deployment, LoopbackPebble, docker.DockerClient]]:
    client = docker.from_env()
    try:
        with acme_deployment(tmp_path_factory.mktemp("acme-deploy"), client, VALIDITY) as found:
            dep, pebble = found
            pebble.resolve(BROKEN, "127.0.0.2")
            yield dep, pebble, client
    finally:
        client.close()


def wait_for(probe, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout}s")


def status_text(dep: Deployment) -> str:
    result = dep.berth("status")
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr  # the service's lines go to stderr, the table to stdout


def test_a_trusted_certificate_is_issued_and_served_with_hsts(acme):
    dep, pebble, _ = acme
    wait_for(lambda: "certificate: valid; serving acme" in status_text(dep), 90, "no certificate")
    root = pebble.root()

    def trusted() -> http.client.HTTPResponse | None:
        connection = Pinned(dep.port, root)  # verifies the chain and the name
        try:
            return connection.get("/hub/health")
        except ssl.SSLCertVerificationError:
            return None  # the proxy looks at the files every 5 seconds
        finally:
            connection.close()

    try:
        answer = wait_for(trusted, 30, "the proxy does not serve the certificate")
    except AssertionError:
        print(dep.berth("logs", "--service", "proxy").stdout[-3000:])
        raise
    assert answer.status == 200
    assert answer.getheader("Strict-Transport-Security") == "max-age=31536000"
    assert answer.getheader("X-Content-Type-Options") == "nosniff"
    assert f"for {NAME} from {pebble.directory}" in status_text(dep)


def test_the_http_port_redirects_to_https(acme):
    dep, _, _ = acme
    http_port = dep.config["tls"]["acme"]["http_port"]
    request = urllib.request.Request(f"http://127.0.0.1:{http_port}/hub/login?next=%2F",
                                     headers={"Host": NAME})  # fmt: skip

    class NoFollow(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.build_opener(urllib.request.ProxyHandler({}), NoFollow).open(
            request, timeout=10
        )
    assert answer.value.code == 301
    assert answer.value.headers["Location"] == f"https://{NAME}:{dep.port}/hub/login?next=%2F"


def test_berth_acme_has_no_engine_no_hub_data_and_no_way_to_the_hub(acme):
    """Fails on a design that runs ACME in the hub (engine guard, data volume) or the proxy."""
    _, _, client = acme
    container = client.containers.get("berth-acme")
    attrs = container.attrs
    assert set(attrs["NetworkSettings"]["Networks"]) == {ACME_NETWORK}
    mounts = {m.get("Name") or m["Source"]: m["Destination"] for m in attrs["Mounts"]}
    assert mounts == {
        f"{PREFIX}-data-proxy": "/srv/berth/proxy",
        f"{PREFIX}-data-acme": "/srv/berth/acme",
    }
    assert attrs["HostConfig"]["ReadonlyRootfs"]
    assert granted_capabilities(attrs["HostConfig"]) == set()
    probe = (
        "import os, socket\n"
        "print([p for p in ('/var/run/docker.sock', '/run/berth-engine/docker.sock',"
        " '/srv/berth/data/secrets') if os.path.exists(p)])\n"
        "s = socket.socket(); s.settimeout(3)\n"
        "try:\n    s.connect(('berth-hub', 8081)); print('hub reached')\n"
        "except OSError as e:\n    print('no hub', type(e).__name__)\n"
    )
    result = container.exec_run(["python3", "-c", probe])
    lines = result.output.decode().split("\n")
    assert lines[0] == "[]" and lines[1].startswith("no hub"), result.output
    assert container.exec_run(["id", "-u"]).output.decode().strip() == "1000"


def login(dep: Deployment) -> requests.Session:
    """The admin's browser session (cookies), over the loopback address."""
    session = requests.Session()
    session.verify, session.trust_env = False, False  # the chain is what Pinned checks
    page = session.get(f"{dep.url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    form = {"username": "admin", "password": dep.admin_password}
    if xsrf:
        form["_xsrf"] = xsrf.group(1)
    answer = session.post(f"{dep.url}/hub/login", data=form, timeout=30, allow_redirects=False)
    assert answer.status_code == 302, answer.text[:300]
    return session


def logged_in(session: requests.Session, dep: Deployment) -> bool:
    answer = session.get(f"{dep.url}/hub/home", timeout=30, allow_redirects=False)
    return answer.status_code == 200


# The login goes to 127.0.0.1 unverified (requests cannot send another name); Pinned checks
# the chain for the name.
@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_renewal_swaps_the_certificate_without_dropping_a_connection_or_a_session(acme):
    """The renewed certificate reaches new connections while a connection opened before keeps
    answering on the old one, a logged-in user stays logged in, and neither the proxy nor the
    hub restarts."""
    dep, pebble, client = acme
    started = {n: client.containers.get(n).attrs["State"]["StartedAt"]
               for n in ("berth-proxy", "berth-hub")}  # fmt: skip
    root = pebble.root()
    session = login(dep)
    assert logged_in(session, dep)
    held = Pinned(dep.port, root)
    assert held.get("/hub/health").status == 200
    first = held.serial()

    def renewed() -> bool:
        assert held.get("/hub/health").status == 200  # the same connection, every second
        fresh = Pinned(dep.port, root)
        try:
            fresh.get("/hub/health")
            return fresh.serial() != first
        finally:
            fresh.close()

    wait_for(renewed, VALIDITY + 30, "no renewed certificate on a new connection")
    assert held.get("/hub/health").status == 200 and held.serial() == first  # never dropped
    held.close()
    assert logged_in(session, dep)  # the same cookie, on a new connection
    assert started == {n: client.containers.get(n).attrs["State"]["StartedAt"] for n in started}


def hub_log(dep: Deployment) -> str:
    result = dep.berth("logs", "--tail", "2000")  # the hub's, as an operator reads it
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_failing_challenge_keeps_serving_the_previous_certificate(acme):
    """A name the authority cannot reach: `berth status` and the hub's own log (`berth logs`)
    give the reason and the next attempt, and the previous trusted certificate stays served.
    The hub's log part fails before this change (only berth-acme's log had it)."""
    dep, pebble, _ = acme
    config = dep.config
    config["tls"]["acme"]["hostnames"] = [NAME, BROKEN]
    dep.write_config(config)
    dep.up()
    reason = f"the challenge failed: {BROKEN}: http-01"

    def failed() -> str | None:
        text = status_text(dep)
        return text if reason in text else None

    text = wait_for(failed, 60, "no failure")
    assert "certificate: failing; serving acme" in text
    assert "next attempt at" in text
    connection = Pinned(dep.port, pebble.root())  # still the previous, trusted certificate
    assert connection.get("/hub/health").status == 200
    connection.close()
    log = dep.berth("logs", "--service", "acme").stdout
    assert "could not get a certificate (attempt 1): " + reason in log
    line = wait_for(
        lambda: next((x for x in hub_log(dep).splitlines() if reason in x), None),
        30, "the failure is not in the hub's log",
    )  # fmt: skip
    assert f"could not get a certificate for {NAME}, {BROKEN} (attempt " in line
    assert "still serving acme (valid until" in line and "next attempt at" in line
    assert line.startswith("[W "), line  # JupyterHub's warning


def test_tls_alpn_01_through_the_proxy_when_port_80_is_closed(acme):
    """`http_port: 0`: berth-acme publishes no port, and the certificate for a new name is
    obtained with TLS-ALPN-01 answered by the proxy on the HTTPS port, then served there.
    Fails before this change (no way to close port 80; HTTP-01 only)."""
    dep, pebble, client = acme
    config = dep.config
    config["tls"]["acme"]["hostnames"] = [ALPN_NAME]
    config["tls"]["acme"]["http_port"] = 0
    dep.write_config(config)
    dep.up()
    ports = client.containers.get("berth-acme").attrs["NetworkSettings"]["Ports"] or {}
    assert all(not bindings for bindings in ports.values()), ports

    def issued() -> str | None:
        text = status_text(dep)
        return text if "certificate: valid; serving acme" in text and ALPN_NAME in text else None

    assert "by tls-alpn-01" in wait_for(issued, 90, "no certificate by TLS-ALPN-01")
    root = pebble.root()

    def trusted() -> bool:
        connection = Pinned(dep.port, root, ALPN_NAME)
        try:
            return connection.get("/hub/health").status == 200
        except ssl.SSLCertVerificationError:
            return False
        finally:
            connection.close()

    wait_for(trusted, 30, "the proxy does not serve the certificate for " + ALPN_NAME)
    proxy_log = dep.berth("logs", "--service", "proxy").stdout
    assert f"answering acme-tls/1 for {ALPN_NAME}" in proxy_log


def test_without_acme_the_self_signed_certificate_returns_without_hsts(acme):
    dep, _, client = acme
    config = dep.config
    del config["tls"]
    dep.write_config(config)
    dep.up()
    assert "berth-acme" not in [c.name for c in client.containers.list(all=True)]
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE

    def self_signed_served() -> http.client.HTTPResponse | None:
        # The hub writes the new certificate as it starts; the proxy loads it within seconds.
        connection = http.client.HTTPSConnection("127.0.0.1", dep.port, timeout=20,
                                                 context=context)  # fmt: skip
        try:
            connection.request("GET", "/hub/health")
            answer = connection.getresponse()
            answer.read()
            cert = x509.load_der_x509_certificate(connection.sock.getpeercert(binary_form=True))
            return answer if cert.issuer == cert.subject else None
        finally:
            connection.close()

    answer = wait_for(self_signed_served, 60, "the self-signed certificate is not back")
    assert answer.status == 200 and answer.getheader("Strict-Transport-Security") is None
