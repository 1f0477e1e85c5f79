"""`berth doctor`'s check of the certificate the service serves: readable, valid now and for
a while, and covering the names people use (a pure function of facts, like every check)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from berth.doctor.checks import Finding

CERT_WARN_DAYS = 21


@dataclass(frozen=True)
class CertificateFacts:
    source: str  # where it was read: a file, or the proxy's volume
    pem: bytes | None
    now: dt.datetime
    wanted_names: tuple[str, ...] = ()  # names people use to reach the service
    self_signed: bool = False
    error: str = ""


def certificate_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}
    names = {str(n) for n in san.get_values_for_type(x509.DNSName)}
    names |= {str(a) for a in san.get_values_for_type(x509.IPAddress)}
    return names


def _covers(names: set[str], wanted: str) -> bool:
    try:
        return ipaddress.ip_address(wanted).compressed in names
    except ValueError:
        pass
    wanted = wanted.lower().rstrip(".")
    lowered = {n.lower() for n in names}
    if wanted in lowered:
        return True
    _, dot, parent = wanted.partition(".")
    return bool(dot) and f"*.{parent}" in lowered


def check_certificate(cert_facts: CertificateFacts) -> Finding:
    if cert_facts.pem is None:
        return Finding(
            "certificate", "skip", cert_facts.error or "no certificate found (run `berth up`)"
        )
    try:
        cert = x509.load_pem_x509_certificate(cert_facts.pem)
    except ValueError:
        return Finding(
            "certificate",
            "fail",
            f"{cert_facts.source} is not a PEM certificate",
            "point tls.cert at the certificate (PEM), then `berth up`",
        )
    renew = (
        "delete the self-signed certificate's marker so the hub makes a new one: `docker exec "
        "berth-hub rm /srv/berth/proxy/tls/self-signed-for`, then `docker restart berth-hub "
        "berth-proxy`"
        if cert_facts.self_signed
        else "renew it, put the new files where tls.cert and tls.key point, then `berth up`"
    )
    left = cert.not_valid_after_utc - cert_facts.now
    if cert.not_valid_before_utc > cert_facts.now:
        return Finding(
            "certificate",
            "fail",
            f"{cert_facts.source} is not valid yet (from "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC): browsers refuse it; is this "
            "host's clock behind?",
            "set the clock right (NTP), or use a certificate valid now",
        )
    if left.total_seconds() <= 0:
        return Finding(
            "certificate",
            "fail",
            f"{cert_facts.source} expired on {cert.not_valid_after_utc:%Y-%m-%d}: browsers "
            "refuse it",
            renew,
        )
    names = certificate_names(cert)
    missing = [n for n in cert_facts.wanted_names if not _covers(names, n)]
    if missing:
        return Finding(
            "certificate",
            "fail",
            f"{cert_facts.source} does not name {', '.join(missing)} (it names "
            f"{', '.join(sorted(names)) or 'nothing'}): browsers refuse it there",
            "list every name people use in tls.hostnames (self-signed), or get a certificate "
            "for them; then `berth up`",
        )
    expires = f"expires {cert.not_valid_after_utc:%Y-%m-%d} ({left.days} days)"
    if left.days < CERT_WARN_DAYS:
        return Finding("certificate", "warn", f"{cert_facts.source} {expires}", renew)
    return Finding("certificate", "ok", f"{cert_facts.source} {expires}")
