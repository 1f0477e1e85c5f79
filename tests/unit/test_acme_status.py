"""berth status's certificate lines, and the hub leaving berth-acme's certificate alone."""

from berth.deploy import hubinit
from berth.deploy.status import certificate_lines


def test_a_valid_certificate_says_until_when_and_when_it_renews():
    status = {
        "directory": "https://acme-v02.api.letsencrypt.org/directory",
        "names": ["hub.example.org"],
        "state": "valid",
        "serving": "acme",
        "not_after": "2026-09-01T00:00:00+00:00",
        "next_attempt": "2026-08-02T00:00:00+00:00",
        "failures": 0,
        "last_error": "",
    }
    assert certificate_lines(status) == [
        "certificate: valid; serving acme (valid until 2026-09-01T00:00:00+00:00); for "
        "hub.example.org from https://acme-v02.api.letsencrypt.org/directory",
        "  renews at 2026-08-02T00:00:00+00:00",
    ]


def test_a_failing_renewal_shows_the_reason_and_the_next_attempt():
    status = {
        "directory": "https://ca/dir",
        "names": ["a.example.org", "b.example.org"],
        "state": "failing",
        "serving": "acme",
        "not_after": "2026-09-01T00:00:00+00:00",
        "next_attempt": "2026-08-02T00:04:00+00:00",
        "failures": 3,
        "last_failure": "2026-08-02T00:00:00+00:00",
        "last_error": "the challenge failed: a.example.org: http-01 connection refused",
    }
    assert certificate_lines(status) == [
        "certificate: failing; serving acme (valid until 2026-09-01T00:00:00+00:00); for "
        "a.example.org, b.example.org from https://ca/dir",
        "  last failure (3 in a row, 2026-08-02T00:00:00+00:00): the challenge failed: "
        "a.example.org: http-01 connection refused",
        "  next attempt at 2026-08-02T00:04:00+00:00",
    ]


def test_the_hub_keeps_acmes_certificate_but_replaces_a_stale_self_signed_one(tmp_path):
    assert hubinit.ensure_self_signed(tmp_path, ["a.example.org"])
    assert not hubinit.acme_certificate_in_place(tmp_path)  # the self-signed stand-in
    (tmp_path / "tls" / "self-signed-for").unlink()  # what berth-acme does on install
    assert hubinit.acme_certificate_in_place(tmp_path)
    (tmp_path / "tls" / "key.pem").unlink()
    assert not hubinit.acme_certificate_in_place(tmp_path)
