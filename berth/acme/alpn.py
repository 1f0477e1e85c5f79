"""TLS-ALPN-01 (RFC 8737): the challenge certificate, and where the proxy finds it.

The authority opens a TLS connection to the name's port 443 offering only the ALPN protocol
`acme-tls/1`, and expects a self-signed certificate for that name carrying the SHA-256 of the
key authorization in a critical acmeIdentifier extension. The HTTPS port is the proxy's, so
berth-acme writes the certificate and its key into the proxy volume (`tls/alpn/<name>.pem`),
and the proxy's preload (berth/deploy/proxy_tls.js) serves it to `acme-tls/1` handshakes for
that name only; browsers never offer `acme-tls/1` and never see it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ObjectIdentifier

from berth import tls

CHALLENGE = "tls-alpn-01"
PROTOCOL = "acme-tls/1"
ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")  # id-pe-acmeIdentifier
# What the proxy accepts as a file name (it checks the client's SNI against the same rule).
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def acme_identifier(key_authorization: str) -> bytes:
    """The extension's value: a DER OCTET STRING holding SHA-256(key authorization)."""
    digest = hashlib.sha256(key_authorization.encode()).digest()
    return bytes([0x04, len(digest)]) + digest


def challenge_pem(name: str, key_authorization: str) -> bytes:
    """A fresh key and the self-signed challenge certificate for `name`, in one PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        tls.self_signed_builder(key, "berth-acme tls-alpn-01", 1, now)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER, acme_identifier(key_authorization)),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return tls.key_pem(key) + cert.public_bytes(serialization.Encoding.PEM)


def challenge_path(directory: Path, name: str) -> Path:
    name = name.lower().rstrip(".")
    if not _NAME_RE.match(name):
        raise ValueError(f"{name!r} cannot be answered with {CHALLENGE}")
    return directory / f"{name}.pem"


class Certificates:
    """The challenge certificates of the running order, in the proxy volume's `tls/alpn/`."""

    def __init__(self, directory: Path, write: Callable[[Path, bytes], None]) -> None:
        self.directory = directory
        self.write = write
        self.written: list[Path] = []

    def put(self, name: str, key_authorization: str) -> None:
        path = challenge_path(self.directory, name)
        self.write(path, challenge_pem(name, key_authorization))
        self.written.append(path)

    def clear(self) -> None:
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written = []
