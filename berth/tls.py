"""Self-signed TLS certificates for the hub (and checks of an operator's own cert/key)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from berth.errors import BerthError

VALID_DAYS = 825  # the longest lifetime browsers accept for a server certificate


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def self_signed_builder(
    key: ec.EllipticCurvePrivateKey, common_name: str, days: float, now: dt.datetime
) -> x509.CertificateBuilder:
    """Subject and issuer `common_name`, valid from 5 minutes before `now` (a peer's clock may
    be a little behind) for `days`; the caller adds its extensions and signs with `key`."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM (the files holding it are private instead)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def self_signed(names: list[str], now: dt.datetime | None = None) -> KeyPair:
    """A P-256 certificate valid for every DNS name and IP address in `names` (first = CN)."""
    if not names:
        raise ValueError("a certificate needs at least one name")
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        self_signed_builder(key, names[0][:64], VALID_DAYS, now)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in dict.fromkeys(names)]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), key_pem(key))


def check_pair(cert_pem: bytes, key_pem: bytes, source: str) -> None:
    """Refuse an operator's cert/key that do not parse or do not belong together."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise BerthError(f"{source}: the certificate is not a PEM X.509 certificate") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BerthError(f"{source}: the key is not an unencrypted PEM private key") from exc
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.PEM
    if cert.public_key().public_bytes(encoding, public) != key.public_key().public_bytes(
        encoding, public
    ):
        raise BerthError(f"{source}: the key does not belong to the certificate")
