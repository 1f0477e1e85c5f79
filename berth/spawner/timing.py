"""Small helpers for the spawn path: concurrent engine round trips, and where the time went."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any


async def concurrently(*steps: Awaitable[Any]) -> list[Any]:
    """Run ``steps`` side by side; their results in order. The first failure is raised as
    itself (not wrapped in an ExceptionGroup, so a SpawnException reaches the user unchanged)
    once the other steps have been cancelled."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class PhaseClock:
    """Seconds spent in each named phase of a spawn, for one log line: ``1.23s (prepare 0.02,
    create 0.05, slot 0.00, start 0.31, boot 0.85)``."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._start = self._last = clock()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = self._clock()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in self.laps.items())
        return f"{self._last - self._start:.2f}s ({parts})"
