"""`berth doctor`'s certificate check as a pure function: certificates made here in, whole
findings out."""

from __future__ import annotations

import datetime as dt

from berth import tls
from berth.doctor import certificate
from berth.doctor.certificate import CertificateFacts
from berth.doctor.checks import Finding

NOW = dt.datetime(2026, 11, 26, 20, 0, tzinfo=dt.UTC)


def _cert(names: list[str], issued: dt.datetime) -> bytes:
    return tls.self_signed(names, now=issued).cert_pem


def test_a_good_certificate():
    pem = _cert(["hub.example.org", "192.0.2.7"], NOW - dt.timedelta(days=10))
    found = certificate.check_certificate(
        CertificateFacts("cert.pem", pem, NOW, ("hub.example.org", "192.0.2.7"))
    )
    assert found.status == "ok" and found.summary.startswith("cert.pem expires ")


def test_an_expired_certificate():
    pem = _cert(["hub.example.org"], NOW - dt.timedelta(days=tls.VALID_DAYS + 1))
    found = certificate.check_certificate(CertificateFacts("cert.pem", pem, NOW))
    assert found.status == "fail" and "expired on" in found.summary
    assert found.fix.startswith("renew it")
    mine = certificate.check_certificate(CertificateFacts("cert.pem", pem, NOW, self_signed=True))
    assert "self-signed-for" in mine.fix


def test_a_certificate_about_to_expire_and_one_not_valid_yet():
    soon = _cert(["h"], NOW - dt.timedelta(days=tls.VALID_DAYS - 3))
    assert certificate.check_certificate(CertificateFacts("c", soon, NOW)).status == "warn"
    future = _cert(["h"], NOW + dt.timedelta(days=2))
    found = certificate.check_certificate(CertificateFacts("c", future, NOW))
    assert found.status == "fail" and "not valid yet" in found.summary


def test_a_certificate_without_the_name_people_use():
    pem = _cert(["hub.example.org"], NOW)
    found = certificate.check_certificate(
        CertificateFacts("cert.pem", pem, NOW, ("jupyter.example.org",))
    )
    assert found == Finding(
        "certificate",
        "fail",
        "cert.pem does not name jupyter.example.org (it names hub.example.org): browsers "
        "refuse it there",
        "list every name people use in tls.hostnames (self-signed), or get a certificate for "
        "them; then `berth up`",
    )


def test_wildcards_and_addresses_cover_names():
    assert certificate._covers({"*.example.org"}, "hub.example.org")
    assert not certificate._covers({"*.example.org"}, "a.hub.example.org")
    assert certificate._covers({"2001:db8::1"}, "2001:db8:0::1")
    assert certificate._covers({"Hub.Example.org"}, "hub.example.org.")


def test_no_certificate_and_a_broken_one():
    assert certificate.check_certificate(CertificateFacts("c", None, NOW)).status == "skip"
    assert certificate.check_certificate(CertificateFacts("c", b"nonsense", NOW)).status == "fail"
