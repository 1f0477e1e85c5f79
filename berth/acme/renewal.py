"""When to ask for a certificate, and how long to wait after a failure: pure functions."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509

RETRY_FIRST = dt.timedelta(minutes=1)
RETRY_MAX = dt.timedelta(hours=6)
# Let's Encrypt asks clients to renew with a third of the lifetime left (30 of 90 days).
RENEW_FRACTION_LEFT = 1 / 3


@dataclass(frozen=True)
class Served:
    """What the certificate in the proxy volume is."""

    names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    self_signed: bool


def inspect(cert_pem: bytes) -> Served:
    """The first certificate of a PEM chain: its names, validity and whether it signed itself."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName)]
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    return Served(
        tuple(names),
        cert.not_valid_before_utc,
        cert.not_valid_after_utc,
        cert.issuer == cert.subject,
    )


def renew_at(served: Served) -> dt.datetime:
    """With a third of its lifetime left."""
    lifetime = served.not_after - served.not_before
    return served.not_after - lifetime * RENEW_FRACTION_LEFT


def why_issue(served: Served | None, wanted: list[str], now: dt.datetime) -> str | None:
    """Why a new certificate is needed now, or None when the served one will do for now."""
    if served is None:
        return "no certificate yet"
    if served.self_signed:
        return "the self-signed certificate is served"
    missing = [n for n in wanted if _canonical(n) not in {_canonical(s) for s in served.names}]
    if missing:
        return f"the certificate does not cover {', '.join(missing)}"
    if now >= served.not_after:
        return "the certificate has expired"
    if now >= renew_at(served):
        return f"the certificate expires at {served.not_after.isoformat(timespec='seconds')}"
    return None


def _canonical(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower().rstrip(".")


def retry_delay(
    failures: int, first: dt.timedelta = RETRY_FIRST, most: dt.timedelta = RETRY_MAX
) -> dt.timedelta:
    """Back-off after `failures` failed attempts in a row: doubling from `first`, at most `most`
    (Let's Encrypt limits failed validations per hour; never hammer it)."""
    if failures <= 0:
        return dt.timedelta(0)
    delay: dt.timedelta = first * 2 ** min(failures - 1, 30)
    return min(delay, most)
