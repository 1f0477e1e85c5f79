"""berth-acme's outcomes in the hub's own log, so `berth logs` (the hub's) shows a failed
renewal with its reason, and the recovery.

berth-acme runs in a container of its own and keeps a copy of its status.json in the proxy
volume (berth/acme/service.py), which the hub mounts; the hub reads it every few seconds and
logs what changed: a failed attempt (warning, with the reason, what is still served and when it
tries again) or a newly installed certificate. At the hub's start the current state is logged
once, so a failure that began before a hub restart is in the new hub's log too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

INTERVAL_SECONDS = 5.0
PREFIX = "certificate (berth-acme): "


def _serving(status: dict[str, Any]) -> str:
    serving = str(status.get("serving") or "?")
    until = status.get("not_after")
    return f"serving {serving}" + (f" (valid until {until})" if until else "")


def failure(status: dict[str, Any]) -> str:
    names = ", ".join(status.get("names", []))
    return (
        f"{PREFIX}could not get a certificate for {names} (attempt {status.get('failures', '?')}"
        f" at {status.get('last_failure')}): {status.get('last_error')}; still "
        f"{_serving(status)}; next attempt at {status.get('next_attempt') or '?'}"
    )


def news(before: dict[str, Any] | None, now: dict[str, Any]) -> list[tuple[int, str]]:
    """What to log, as (level, message), when berth-acme's status goes from `before` (None at
    the hub's start) to `now`."""
    said: list[tuple[int, str]] = []
    names = ", ".join(now.get("names", []))
    failed = now.get("failures", 0) and now.get("last_failure")
    if failed and (before is None or before.get("last_failure") != now.get("last_failure")):
        said.append((logging.WARNING, failure(now)))
    succeeded = now.get("last_success")
    if before is not None and succeeded and before.get("last_success") != succeeded:
        said.append((logging.INFO, f"{PREFIX}installed a new certificate for {names}; "
                                   f"{_serving(now)}"))  # fmt: skip
    elif before is None and not failed and now.get("state") == "valid":
        said.append((logging.INFO, f"{PREFIX}valid for {names}; {_serving(now)}; renews at "
                                   f"{now.get('next_attempt') or '?'}"))  # fmt: skip
    return said


class Watcher:
    """Reads the status file and logs its news; `check` is what the hub's loop calls."""

    def __init__(self, log: logging.Logger, path: Path) -> None:
        self.log = log
        self.path = path
        self.last: dict[str, Any] | None = None

    def check(self) -> None:
        try:
            now = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # not written yet (berth-acme is starting), or being replaced
        if not isinstance(now, dict):
            return
        for level, message in news(self.last, now):
            self.log.log(level, message)
        self.last = now


def start(log: logging.Logger, path: Path, interval: float = INTERVAL_SECONDS) -> Any:
    """Check now and then every `interval` seconds on the hub's event loop."""
    from tornado.ioloop import PeriodicCallback

    watcher = Watcher(log, path)
    watcher.check()
    callback = PeriodicCallback(watcher.check, interval * 1000)
    callback.start()
    return callback
