"""The ACME challenge choice in berth.yaml, the TLS-ALPN-01 certificate (RFC 8737), and the
hub's log lines about berth-acme (berth/deploy/acme_log.py): pure functions."""

from __future__ import annotations

import hashlib
import logging

import pytest
from acme import challenges
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from josepy.jwk import JWKRSA

from berth.acme import alpn
from berth.acme.issue import key_authorization
from berth.config.schema import ACMEConfig, FieldProblem
from berth.deploy.acme_log import news

BASE = {"email": "ops@example.org", "hostnames": ["hub.example.org"]}


@pytest.mark.parametrize(
    ("settings", "chosen"),
    [
        ({}, "http-01"),
        ({"http_port": 8080}, "http-01"),
        ({"http_port": 0}, "tls-alpn-01"),
        ({"challenge": "tls-alpn-01"}, "tls-alpn-01"),
        ({"challenge": "tls-alpn-01", "http_port": 0}, "tls-alpn-01"),
        ({"challenge": "http-01"}, "http-01"),
    ],
)
def test_auto_is_http_01_with_an_http_port_and_tls_alpn_01_without(settings, chosen):
    assert ACMEConfig(**BASE, **settings).challenge_type() == chosen


def test_http_01_without_an_http_port_is_refused():
    with pytest.raises((FieldProblem, ValueError), match="http-01 needs an http_port"):
        ACMEConfig(**BASE, challenge="http-01", http_port=0)


def test_the_key_authorization_is_the_one_the_acme_library_computes():
    jwk = JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    token = b"t" * 32
    chall = challenges.HTTP01(token=token)
    assert key_authorization(chall.encode("token"), jwk) == chall.key_authorization(jwk)


def test_the_challenge_certificate_carries_the_digest_in_a_critical_extension():
    pem = alpn.challenge_pem("hub.example.org", "token.thumb")
    assert b"PRIVATE KEY" in pem  # the proxy loads key and certificate from the one file
    cert = x509.load_pem_x509_certificate(pem)
    found = cert.extensions.get_extension_for_oid(alpn.ACME_IDENTIFIER)
    assert found.critical
    # DER OCTET STRING (0x04, 32 bytes) of SHA-256("token.thumb")
    assert found.value.value == b"\x04\x20" + hashlib.sha256(b"token.thumb").digest()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["hub.example.org"]


@pytest.mark.parametrize("name", ["../cert", "a/b", "", "-x.org", "x..org", "*.example.org"])
def test_a_challenge_file_name_is_a_plain_dns_name(tmp_path, name):
    with pytest.raises(ValueError):
        alpn.challenge_path(tmp_path, name)


FAILING = {
    "names": ["hub.example.org"],
    "state": "failing",
    "serving": "acme",
    "not_after": "2026-09-01T00:00:00+00:00",
    "next_attempt": "2026-08-02T00:04:00+00:00",
    "failures": 3,
    "last_error": "the challenge failed: hub.example.org: http-01 connection refused",
    "last_failure": "2026-08-02T00:00:00+00:00",
    "last_success": "2026-06-01T00:00:00+00:00",
}


def test_a_new_failure_is_one_warning_with_the_reason():
    before = {**FAILING, "failures": 2, "last_failure": "2026-08-01T23:58:00+00:00"}
    assert news(before, FAILING) == [
        (
            logging.WARNING,
            "certificate (berth-acme): could not get a certificate for hub.example.org "
            "(attempt 3 at 2026-08-02T00:00:00+00:00): the challenge failed: hub.example.org: "
            "http-01 connection refused; still serving acme (valid until "
            "2026-09-01T00:00:00+00:00); next attempt at 2026-08-02T00:04:00+00:00",
        )
    ]
    assert news(FAILING, FAILING) == []  # the same failure, read again: said once


def test_at_the_hubs_start_the_current_state_is_said_once():
    assert [level for level, _ in news(None, FAILING)] == [logging.WARNING]
    valid = {**FAILING, "state": "valid", "failures": 0, "last_error": "", "last_failure": ""}
    assert news(None, valid) == [
        (
            logging.INFO,
            "certificate (berth-acme): valid for hub.example.org; serving acme (valid until "
            "2026-09-01T00:00:00+00:00); renews at 2026-08-02T00:04:00+00:00",
        )
    ]


def test_the_recovery_after_failures_is_said():
    recovered = {**FAILING, "state": "valid", "failures": 0, "last_error": "",
                 "last_success": "2026-08-02T00:04:10+00:00"}  # fmt: skip
    assert news(FAILING, recovered) == [
        (
            logging.INFO,
            "certificate (berth-acme): installed a new certificate for hub.example.org; "
            "serving acme (valid until 2026-09-01T00:00:00+00:00)",
        )
    ]
