"""berth/acme: when to issue, the back-off, the HTTP port's answers (pure parts)."""

import datetime as dt
import http.client
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from berth import tls
from berth.acme import renewal
from berth.acme.challenge import Tokens, make_server, redirect_target

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def issued_by_ca(names: list[str], start: dt.datetime, days: int) -> bytes:
    """A leaf signed by a separate CA (issuer != subject), as an authority issues it."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test authority")])
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .sign(ca_key, hashes.SHA256())
    )
    return leaf.public_bytes(serialization.Encoding.PEM)


def test_inspect_reads_names_validity_and_self_signed():
    served = renewal.inspect(issued_by_ca(["hub.example.org", "www.example.org"], NOW, 90))
    assert served == renewal.Served(
        ("hub.example.org", "www.example.org"), NOW, NOW + dt.timedelta(days=90), False
    )
    own = renewal.inspect(tls.self_signed(["hub.example.org", "127.0.0.1"], now=NOW).cert_pem)
    assert own.self_signed and own.names == ("hub.example.org", "127.0.0.1")


def test_a_90_day_certificate_renews_with_30_days_left():
    served = renewal.inspect(issued_by_ca(["hub.example.org"], NOW, 90))
    assert renewal.renew_at(served) == NOW + dt.timedelta(days=60)


@pytest.mark.parametrize(
    ("days_later", "names", "reason"),
    [
        (10, ["hub.example.org"], None),
        (59, ["HUB.example.org."], None),
        (60, ["hub.example.org"], "the certificate expires at 2026-08-30T12:00:00+00:00"),
        (91, ["hub.example.org"], "the certificate has expired"),
        (
            10,
            ["hub.example.org", "new.example.org"],
            "the certificate does not cover new.example.org",
        ),
    ],
)
def test_why_issue(days_later, names, reason):
    served = renewal.inspect(issued_by_ca(["hub.example.org"], NOW, 90))
    assert renewal.why_issue(served, names, NOW + dt.timedelta(days=days_later)) == reason


def test_no_certificate_or_a_self_signed_one_means_issue_now():
    assert renewal.why_issue(None, ["a.org"], NOW) == "no certificate yet"
    own = renewal.inspect(tls.self_signed(["a.org"], now=NOW).cert_pem)
    assert renewal.why_issue(own, ["a.org"], NOW) == "the self-signed certificate is served"


def test_failures_back_off_doubling_up_to_six_hours():
    delays = [renewal.retry_delay(n).total_seconds() for n in range(0, 12)]
    assert delays == [0, 60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600, 21600]
    assert renewal.retry_delay(10_000) == dt.timedelta(hours=6)  # no overflow after months


def test_redirects_go_to_https_on_a_certificate_name_only():
    names = ["hub.example.org", "jupyter.example.org"]
    assert redirect_target("jupyter.example.org", "/hub/login?x=1", names, 443) == (
        "https://jupyter.example.org/hub/login?x=1"
    )
    assert (
        redirect_target("hub.example.org:80", "/", names, 8443) == "https://hub.example.org:8443/"
    )


@pytest.mark.parametrize(
    ("host", "path"),
    [("evil.example.com", "/"), (None, "/"), ("hub.example.org", "//evil.example.com/x"),
     ("hub.example.org@evil.example.com", "/"), ("hub.example.org", "http://evil.example.com/")],
)  # fmt: skip
def test_an_attacker_cannot_make_the_http_port_an_open_redirect(host, path):
    """Host headers and absolute or scheme-relative paths are an attacker's; the target stays
    on a certificate name."""
    target = redirect_target(host, path, ["hub.example.org"], 443)
    assert target.startswith("https://hub.example.org/")


def test_the_http_port_answers_only_the_running_orders_tokens():
    tokens = Tokens()
    server = make_server(0, tokens, ["hub.example.org"], 443)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def get(path: str) -> tuple[int, str, str | None]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", path, headers={"Host": "hub.example.org"})
        answer = connection.getresponse()
        result = answer.status, answer.read().decode(), answer.getheader("Location")
        connection.close()
        return result

    try:
        tokens.put("tok-EN_1", "tok-EN_1.thumbprint")
        assert get("/.well-known/acme-challenge/tok-EN_1") == (200, "tok-EN_1.thumbprint", None)
        assert get("/.well-known/acme-challenge/other")[0] == 404
        assert get("/.well-known/acme-challenge/../../etc/passwd")[0] == 404
        assert get("/hub/") == (301, "", "https://hub.example.org/hub/")
        tokens.clear()
        assert get("/.well-known/acme-challenge/tok-EN_1")[0] == 404
    finally:
        server.shutdown()
        server.server_close()
