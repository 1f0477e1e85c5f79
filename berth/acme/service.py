"""`python -m berth.acme.service`: the `berth-acme` container's loop.

Keeps a trusted certificate in the proxy volume: issues one when none of ours is served (the
self-signed one, names changed), renews it with a third of its lifetime left, and after a
failure keeps the certificate that is there and tries again with a doubling back-off. Every
attempt's outcome goes to the log and to status.json in its own volume, which `berth status`
reads, with a copy in the proxy volume, from which the hub logs failures and recoveries
(berth/deploy/acme_log.py). The proxy notices the new files and loads them for new connections
only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from berth.acme import alpn, renewal
from berth.acme.challenge import Tokens, make_server
from berth.acme.issue import Answers, IssueError, obtain
from berth.deploy import layout
from berth.private_files import write_private

STATUS_FILE = "status.json"
STATUS_FILE_FOR_HUB = layout.ACME_STATUS_FOR_HUB
LONGEST_SLEEP = 600.0  # look again at least this often (a restarted hub may rewrite the files)


@dataclass
class Status:
    """What `berth status` shows; times are ISO 8601 UTC."""

    directory: str
    names: list[str]
    challenge: str = "http-01"  # or tls-alpn-01
    state: str = "starting"  # issuing, valid, failing
    serving: str = ""  # which certificate the proxy has: "acme", "self-signed", "other", "none"
    not_after: str = ""
    renew_at: str = ""
    next_attempt: str = ""
    failures: int = 0
    last_error: str = ""
    last_failure: str = ""
    last_success: str = ""
    history: list[str] = field(default_factory=list)  # the last outcomes, newest last


def _iso(when: dt.datetime | None) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds") if when else ""


class Keeper:
    def __init__(self, args: argparse.Namespace, tokens: Tokens) -> None:
        self.args = args
        tls_dir = Path(args.tls_dir)
        self.answers = Answers(
            args.challenge, tokens, alpn.Certificates(tls_dir / layout.ACME_ALPN_DIR, write_private)
        )
        self.state = Path(args.state)
        self.cert = tls_dir / "cert.pem"
        self.key = tls_dir / "key.pem"
        self.status = Status(args.directory, list(args.names), args.challenge)
        self.retry_first = dt.timedelta(seconds=args.retry_first)
        self.verify: bool | str = True
        if args.directory_ca_env and os.environ.get(args.directory_ca_env):
            self.verify = str(self._ca_bundle(os.environ[args.directory_ca_env]))
        saved = self.state / STATUS_FILE
        if saved.exists():  # failures survive a restart, so the back-off does too
            try:
                old = json.loads(saved.read_text())
                same = (old.get("names"), old.get("directory"), old.get("challenge", "http-01"))
                if same == (self.status.names, args.directory, args.challenge):
                    self.status.failures = int(old.get("failures", 0))
                    self.status.last_failure = old.get("last_failure", "")
                    self.status.last_error = old.get("last_error", "")
                    self.status.last_success = old.get("last_success", "")
                    self.status.history = list(old.get("history", []))[-10:]
            except (ValueError, TypeError, AttributeError):
                pass

    def _ca_bundle(self, extra_pem: str) -> Path:
        """The system's CAs plus the operator's test CA, for the directory's HTTPS only."""
        import certifi

        bundle = self.state / "directory-ca-bundle.pem"
        system = Path(certifi.where()).read_bytes()
        write_private(bundle, system + b"\n" + extra_pem.encode())
        return bundle

    def served(self) -> tuple[renewal.Served | None, bool]:
        """The certificate in the proxy volume, and whether it is one this keeper issued."""
        try:
            pem = self.cert.read_bytes()
            served = renewal.inspect(pem)
        except (OSError, ValueError):
            return None, False
        issued = self.state / "issued.sha256"
        ours = issued.exists() and issued.read_text() == hashlib.sha256(pem).hexdigest()
        return served, ours

    def save(self) -> None:
        text = json.dumps(asdict(self.status), indent=1).encode()
        write_private(self.state / STATUS_FILE, text)
        # The hub's copy (it mounts the proxy volume, not this one): no secret in it.
        write_private(Path(self.args.tls_dir).parent / STATUS_FILE_FOR_HUB, text)

    def step(self, now: dt.datetime) -> float:
        """Issue if due; return how long to sleep before looking again."""
        served, ours = self.served()
        self.status.serving = (
            "none" if served is None else "self-signed" if served.self_signed
            else "acme" if ours else "other"
        )  # fmt: skip
        self.status.not_after = _iso(served.not_after) if served else ""
        self.status.renew_at = _iso(renewal.renew_at(served)) if served and ours else ""
        last_failure = (
            dt.datetime.fromisoformat(self.status.last_failure)
            if self.status.last_failure
            else None
        )
        if served is not None and not ours:
            reason: str | None = (
                "the self-signed certificate is served" if served.self_signed
                else "the certificate served is not one berth-acme issued"
            )  # fmt: skip
        else:
            reason = renewal.why_issue(served, self.status.names, now)
        if reason is None:
            assert served is not None
            when = renewal.renew_at(served)
            self.status.state, self.status.next_attempt = "valid", _iso(when)
            self.save()
            return (when - now).total_seconds()
        if self.status.failures and last_failure is not None:
            when = last_failure + renewal.retry_delay(self.status.failures, self.retry_first)
            if when > now:
                self.status.state, self.status.next_attempt = "failing", _iso(when)
                self.save()
                return (when - now).total_seconds()
        self.status.state, self.status.next_attempt = "issuing", _iso(now)
        self.save()
        names = ", ".join(self.status.names)
        say(
            f"asking {self.args.directory} for a certificate for {names} ({reason}); "
            f"answering {self.args.challenge}"
        )
        try:
            issued = obtain(
                self.args.directory, self.args.email, self.status.names, self.state,
                self.answers, self.verify, write_private,
            )  # fmt: skip
        except IssueError as exc:
            return self._failed(str(exc), served, dt.datetime.now(dt.UTC))
        self._install(issued.fullchain_pem, issued.key_pem)
        fresh = renewal.inspect(issued.fullchain_pem)
        done = dt.datetime.now(dt.UTC)
        self.status.failures, self.status.last_error, self.status.last_success = 0, "", _iso(done)
        self.status.history = [
            *self.status.history,
            f"{_iso(done)} issued ({self.args.challenge})",
        ][-10:]
        say(
            f"installed a certificate for {', '.join(fresh.names)}, valid until "
            f"{_iso(fresh.not_after)}; renewing from {_iso(renewal.renew_at(fresh))}"
        )
        return 0.0  # look again at once: records the new state

    def _install(self, chain: bytes, key: bytes) -> None:
        # Key first: the proxy loads a pair only when key and certificate belong together, so
        # in between it keeps serving the old pair.
        write_private(self.key, key)
        write_private(self.cert, chain)
        write_private(self.state / "issued.sha256", hashlib.sha256(chain).hexdigest().encode())
        (self.cert.parent / layout.SELF_SIGNED_MARKER).unlink(missing_ok=True)

    def _failed(self, reason: str, served: renewal.Served | None, now: dt.datetime) -> float:
        self.status.failures += 1
        self.status.last_error, self.status.last_failure = reason, _iso(now)
        self.status.history = [*self.status.history, f"{_iso(now)} failed: {reason}"][-10:]
        delay = renewal.retry_delay(self.status.failures, self.retry_first)
        self.status.state, self.status.next_attempt = "failing", _iso(now + delay)
        self.save()
        keeping = (
            f"keeping the served certificate (valid until {_iso(served.not_after)})"
            if served else "no certificate to keep"
        )  # fmt: skip
        say(
            f"could not get a certificate (attempt {self.status.failures}): {reason}; {keeping}; "
            f"next attempt at {_iso(now + delay)}"
        )
        return delay.total_seconds()


def say(message: str) -> None:
    print(f"berth-acme: {message}", file=sys.stderr, flush=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="berth-acme")
    parser.add_argument("--directory", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--name", dest="names", action="append", required=True)
    parser.add_argument("--http-port", type=int, default=8080, help="port in this container")
    parser.add_argument("--challenge", choices=["http-01", alpn.CHALLENGE], default="http-01")
    parser.add_argument("--https-port", type=int, default=443, help="public HTTPS port")
    parser.add_argument("--tls-dir", default="/srv/berth/proxy/tls")
    parser.add_argument("--state", default="/srv/berth/acme")
    parser.add_argument(
        "--directory-ca-env",
        default="BERTH_ACME_DIRECTORY_CA",
        help="environment variable holding a PEM CA to trust for the directory",
    )
    parser.add_argument("--retry-first", type=float, default=60.0, help="first back-off, seconds")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    tokens = Tokens()
    server = make_server(args.http_port, tokens, list(args.names), args.https_port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    keeper = Keeper(args, tokens)
    say(f"answering {args.challenge}; directory {args.directory}")
    while True:
        try:
            pause = keeper.step(dt.datetime.now(dt.UTC))
        except Exception as exc:  # a bug or a full disk must not end the HTTP port's redirects
            say(f"unexpected error: {type(exc).__name__}: {exc}")
            pause = 60.0
        time.sleep(min(max(pause, 1.0), LONGEST_SLEEP))


if __name__ == "__main__":
    sys.exit(main())
