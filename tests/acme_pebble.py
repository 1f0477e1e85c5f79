"""Pebble, Let's Encrypt's test ACME server (Debian package `pebble`), for the tls.acme tests.

Two ways to run it, both reaching only this machine:

- `loopback_pebble`: Pebble and pebble-challtestsrv as processes on 127.0.0.1; the latter is
  Pebble's DNS resolver and answers every name with 127.0.0.1, so Pebble really validates
  HTTP-01 against a challenge server on loopback.
- `pebble_container`: Pebble in a container built from the Debian package's binary, on the
  deployment's `<network>-acme` network, where Docker's DNS resolves `berth-acme.<network>`.

Pebble serves its directory over HTTPS: `directory_ca` makes a CA and a certificate for it,
the CA being what `tls.acme.directory_ca` trusts. Pebble's issuing root (made anew at every
start) is fetched from its management port: a client trusting it sees a valid chain.
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PEBBLE = shutil.which("pebble")
CHALLTESTSRV = shutil.which("pebble-challtestsrv")
DIRECTORY_PORT, MANAGEMENT_PORT = 14000, 15000
PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}


def need_pebble() -> str:
    if PEBBLE is None:
        pytest.skip("Pebble is not installed (apt-get install pebble; scripts/setup.sh does)")
    return PEBBLE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pem(obj) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def directory_ca(workdir: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """(ca.pem, cert.pem, key.pem): a CA and Pebble's own HTTPS certificate for `names`."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth test directory CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = workdir / "ca.pem", workdir / "pebble-cert.pem", workdir / "pebble-key.pem"
    paths[0].write_bytes(_pem(ca))
    paths[1].write_bytes(_pem(leaf))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def config(cert: str, key: str, listen: str, management: str, http_port: int, validity: int):
    return {
        "pebble": {
            "listenAddress": listen,
            "managementListenAddress": management,
            "certificate": cert,
            "privateKey": key,
            "httpPort": http_port,
            "tlsPort": 5001,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
            "certificateValidityPeriod": validity,
        }
    }


def fetch_root(management_url: str, ca: Path, attempts: int = 40) -> bytes:
    """Pebble's issuing root (bounded wait while Pebble starts)."""
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False  # the management port is asked by address
    for _ in range(attempts):
        try:
            opener = urllib.request.build_opener(  # never through a proxy: this machine only
                urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
            )
            with opener.open(f"{management_url}/roots/0", timeout=3) as r:
                return r.read()
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"Pebble's management port {management_url} did not answer")


@dataclass
class LoopbackPebble:
    directory: str
    ca: Path
    http_port: int  # where Pebble validates HTTP-01 on 127.0.0.1
    management: str

    def root(self) -> bytes:
        return fetch_root(self.management, self.ca)


@contextmanager
def loopback_pebble(workdir: Path, validity: int) -> Iterator[LoopbackPebble]:
    pebble = need_pebble()
    if CHALLTESTSRV is None:
        pytest.skip("pebble-challtestsrv is not installed (Debian package pebble)")
    ca, cert, key = directory_ca(workdir, ["localhost", "127.0.0.1"])
    dns, http_port = free_port(), free_port()
    listen, management = free_port(), free_port()
    (workdir / "pebble.json").write_text(json.dumps(config(
        str(cert), str(key), f"127.0.0.1:{listen}", f"127.0.0.1:{management}", http_port, validity
    )))  # fmt: skip
    resolver = subprocess.Popen(
        [CHALLTESTSRV, "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "",
         "-tlsalpn01", "", "-management", f"127.0.0.1:{free_port()}", "-defaultIPv6", "",
         "-defaultIPv4", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = subprocess.Popen(
        [pebble, "-config", str(workdir / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns}"],
        env=PEBBLE_ENV, stdout=(workdir / "pebble.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        found = LoopbackPebble(
            f"https://127.0.0.1:{listen}/dir", ca, http_port, f"https://127.0.0.1:{management}"
        )
        found.root()  # waits until Pebble answers
        yield found
    finally:
        for process in (server, resolver):
            process.terminate()
            process.wait(timeout=10)


PEBBLE_IMAGE = "berth-test-pebble:latest"
PEBBLE_DOCKERFILE = """\
FROM berth/os-base:bookworm
COPY pebble /usr/local/bin/pebble
COPY pebble.json pebble-cert.pem pebble-key.pem /etc/pebble/
USER 65534
ENTRYPOINT ["/usr/local/bin/pebble", "-config", "/etc/pebble/pebble.json"]
"""


@dataclass
class PebbleContainer:
    directory: str
    ca: Path
    management: str
    container: object

    def root(self) -> bytes:
        return fetch_root(self.management, self.ca)


@contextmanager
def pebble_container(
    client, workdir: Path, name: str, network: str, http_port: int, validity: int
) -> Iterator[PebbleContainer]:
    """Pebble in a container on `network` (which must exist), validating on `http_port` of
    the names it is asked for, as Docker's DNS on that network resolves them."""
    pebble = need_pebble()
    ca, cert, key = directory_ca(workdir, [name])
    settings = config("/etc/pebble/pebble-cert.pem", "/etc/pebble/pebble-key.pem",
                      f"0.0.0.0:{DIRECTORY_PORT}", f"0.0.0.0:{MANAGEMENT_PORT}", http_port,
                      validity)  # fmt: skip
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        files = {
            "Dockerfile": (PEBBLE_DOCKERFILE.encode(), 0o644),
            "pebble": (Path(pebble).read_bytes(), 0o755),
            "pebble.json": (json.dumps(settings).encode(), 0o644),
            "pebble-cert.pem": (cert.read_bytes(), 0o644),
            "pebble-key.pem": (key.read_bytes(), 0o644),  # a throw-away test key
        }
        for member, (data, mode) in files.items():
            info = tarfile.TarInfo(member)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=PEBBLE_IMAGE, rm=True)
    container = client.containers.run(
        PEBBLE_IMAGE, name=name, detach=True, network=network, environment=PEBBLE_ENV,
        labels={"berth-test": "acme"},
    )  # fmt: skip
    try:
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]
        found = PebbleContainer(
            f"https://{name}:{DIRECTORY_PORT}/dir", ca,
            f"https://{address}:{MANAGEMENT_PORT}", container,
        )  # fmt: skip
        found.root()
        yield found
    finally:
        container.remove(force=True)
        client.images.remove(PEBBLE_IMAGE, force=True)
