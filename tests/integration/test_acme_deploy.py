"""`berth up` with tls.acme against Pebble in a container on berth-acme's network.

Pebble validates HTTP-01 for real: it resolves `berth-acme.<network>-acme` with Docker's DNS
and fetches the token from berth-acme's HTTP port. A client that trusts Pebble's root then
sees a valid chain on the service's HTTPS port (what a browser does once the root is
trusted); the certificate is renewed while a connection stays open; a challenge that fails
leaves the previous certificate served with the reason in `berth status`.

Holds the deployment lock (tests/deployment.py) and needs `berth/hub` built from this tree.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from acme_pebble import pebble_container
from cryptography import x509
from deployment import PREFIX, Deployment, base_config, exclusive_hub, free_port, teardown

pytestmark = pytest.mark.integration

ACME_NETWORK = f"{PREFIX}-net-acme"  # berth up's `<network>-acme`, made first for Pebble
NAME = f"berth-acme.{ACME_NETWORK}"  # what Docker's DNS answers on that network
VALIDITY = 90  # seconds; renewed with 30 left


class Pinned(http.client.HTTPSConnection):
    """HTTPS to the published port on loopback, verified for NAME (as a browser would be)."""

    def __init__(self, port: int, root: bytes) -> None:
        super().__init__(NAME, port, timeout=20, context=ssl.create_default_context(
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
def acme(tmp_path_factory) -> Iterator[tuple[Deployment, Any, docker.DockerClient]]:
    workdir = tmp_path_factory.mktemp("acme-deploy")
    client = docker.from_env()
    with exclusive_hub():
        teardown(workdir)
        client.networks.create(ACME_NETWORK, driver="bridge", labels={"berth.deploy.role": "acme"})
        try:
            with pebble_container(
                client, workdir, f"{PREFIX}-pebble", ACME_NETWORK, 8080, VALIDITY
            ) as pebble:
                port = free_port()
                config = base_config(port)
                config["tls"] = {
                    "acme": {
                        "email": "ops@example.org",
                        "hostnames": [NAME],
                        "directory": pebble.directory,
                        "directory_ca": "ca.pem",  # written by pebble_container
                        "http_port": free_port(),
                    }
                }
                dep = Deployment(workdir, port, config)
                dep.write_config()
                dep.up()
                yield dep, pebble, client
        finally:
            teardown(workdir)
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
    assert attrs["HostConfig"]["ReadonlyRootfs"] and attrs["HostConfig"]["CapDrop"] == ["ALL"]
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


def test_renewal_swaps_the_certificate_without_dropping_an_open_connection(acme):
    dep, pebble, client = acme
    started = {n: client.containers.get(n).attrs["State"]["StartedAt"]
               for n in ("berth-proxy", "berth-hub")}  # fmt: skip
    root = pebble.root()
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
    assert started == {n: client.containers.get(n).attrs["State"]["StartedAt"] for n in started}


def test_a_failing_challenge_keeps_serving_the_previous_certificate(acme):
    dep, pebble, _ = acme
    config = dep.config
    # Pebble's own name: Docker's DNS answers it (no query leaves the machine), and nothing
    # listens on the challenge port there.
    unreachable = f"{PREFIX}-pebble.{ACME_NETWORK}"
    config["tls"]["acme"]["hostnames"] = [NAME, unreachable]
    dep.write_config(config)
    dep.up()
    reason = f"the challenge failed: {unreachable}"

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
