"""Waiting in tests for what the system does on its own time: a condition polled until it holds
or a deadline by the clock passes, then a failure that shows the state last seen. Importable from
tests/ and below (tests/conftest.py puts tests/ on sys.path)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, Protocol


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str | Callable[[], str], step: float = 0.5
) -> Any:
    """The predicate's first truthy value within ``timeout`` seconds. ``what`` names the wait in
    the failure, or is called then to describe the state it last saw."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            told = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout}s waiting for {told}")
        time.sleep(step)


class Logging(Protocol):
    def logs(self) -> bytes: ...


def wait_logged(
    container: Logging, wanted: str | re.Pattern[str], timeout: float = 120, count: int = 1
) -> str:
    """The container's log once it holds ``wanted`` (a text, or a pattern) ``count`` times. A
    program's line reaches the engine's log on the engine's time, not the moment it is
    written, and a loaded machine stretches what comes before it: a log read once right after
    an action may not have the line yet."""

    def found() -> str:
        log = container.logs().decode(errors="replace")
        hits = len(wanted.findall(log)) if isinstance(wanted, re.Pattern) else log.count(wanted)
        return log if hits >= count else ""

    return str(
        wait_until(
            found,
            timeout,
            lambda: f"{wanted!r} {count}x in the log:\n{container.logs().decode()[-3000:]}",
            step=0.2,
        )
    )
