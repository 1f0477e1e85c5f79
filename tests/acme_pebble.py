"""Pebble, Let's Encrypt's test ACME server (Debian package `pebble`), for the tls.acme tests.

`loopback_pebble` runs Pebble and pebble-challtestsrv as processes on this machine; the latter
is Pebble's DNS resolver and answers every name with 127.0.0.1 (unless told otherwise with
`resolve`), so Pebble really validates: HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port` of
127.0.0.1, which is where a deployment publishes its ports. Pebble's directory listens on
`listen_ip`: 127.0.0.1 for a process on this machine, or the gateway of a Docker network for
berth-acme in a container on it (a host address: the traffic stays on this machine).

Pebble serves its directory over HTTPS: `directory_ca` makes a CA and a certificate for it,
the CA being what `tls.acme.directory_ca` trusts. Pebble's issuing root (made anew at every
start) is fetched from its management port: a client trusting it sees a valid chain.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
import ssl
import subprocess
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
from loopback_ports import free_port

from berth import tls

PEBBLE = shutil.which("pebble")
CHALLTESTSRV = shutil.which("pebble-challtestsrv")
DIRECTORY_PORT, MANAGEMENT_PORT = 14000, 15000
PEBBLE_ENV = {"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}


def need_pebble() -> str:
    if PEBBLE is None:
        pytest.skip("Pebble is not installed (apt-get install pebble; scripts/setup.sh does)")
    return PEBBLE


def _pem(obj) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def directory_ca(workdir: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """(ca.pem, cert.pem, key.pem): a CA and Pebble's own HTTPS certificate for `names`."""
    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        tls.self_signed_builder(ca_key, "berth test directory CA", 1, now)
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
        .issuer_name(ca.subject)
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
    paths[2].write_bytes(tls.key_pem(key))
    return paths


def config(
    cert: str, key: str, listen: str, management: str, http_port: int, tls_port: int, validity: int
):
    return {
        "pebble": {
            "listenAddress": listen,
            "managementListenAddress": management,
            "certificate": cert,
            "privateKey": key,
            "httpPort": http_port,
            "tlsPort": tls_port,
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
    tls_port: int  # where Pebble validates TLS-ALPN-01 on 127.0.0.1
    management: str
    resolver: str  # pebble-challtestsrv's management URL

    def root(self) -> bytes:
        return fetch_root(self.management, self.ca)

    def resolve(self, name: str, address: str) -> None:
        """Pebble's DNS answers `name` with `address` from now on (another loopback address,
        where nothing listens, makes a challenge fail)."""
        body = json.dumps({"host": name, "addresses": [address]}).encode()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{self.resolver}/add-a", data=body, timeout=5) as answer:
            assert answer.status == 200


@contextmanager
def loopback_pebble(
    workdir: Path,
    validity: int,
    listen_ip: str = "127.0.0.1",
    http_port: int | None = None,
    tls_port: int | None = None,
) -> Iterator[LoopbackPebble]:
    pebble = need_pebble()
    if CHALLTESTSRV is None:
        pytest.skip("pebble-challtestsrv is not installed (Debian package pebble)")
    names = list(dict.fromkeys(["localhost", "127.0.0.1", listen_ip]))
    ca, cert, key = directory_ca(workdir, names)
    dns, resolver_port = free_port(), free_port()
    http_port, tls_port = http_port or free_port(), tls_port or free_port()
    listen, management = free_port(), free_port()
    (workdir / "pebble.json").write_text(json.dumps(config(
        str(cert), str(key), f"{listen_ip}:{listen}", f"127.0.0.1:{management}", http_port,
        tls_port, validity,
    )))  # fmt: skip
    resolver = subprocess.Popen(
        [CHALLTESTSRV, "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "",
         "-tlsalpn01", "", "-management", f"127.0.0.1:{resolver_port}", "-defaultIPv6", "",
         "-defaultIPv4", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = subprocess.Popen(
        [pebble, "-config", str(workdir / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns}"],
        env=PEBBLE_ENV, stdout=(workdir / "pebble.log").open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        found = LoopbackPebble(
            f"https://{listen_ip}:{listen}/dir", ca, http_port, tls_port,
            f"https://127.0.0.1:{management}", f"http://127.0.0.1:{resolver_port}",
        )  # fmt: skip
        found.root()  # waits until Pebble answers
        yield found
    finally:
        for process in (server, resolver):
            process.terminate()
            process.wait(timeout=10)
