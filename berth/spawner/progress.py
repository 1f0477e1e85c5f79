"""A spawn's progress events, readable by any number of followers while the spawn runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import NotRequired, TypedDict


class ProgressEvent(TypedDict):
    """One event of the spawn page's progress stream (JupyterHub's ``Spawner.progress``)."""

    progress: NotRequired[int]  # percent; without it the bar stays where it is
    message: str


class ProgressLog:
    """Append-only list of events; ``follow()`` replays it and then waits for more."""

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []
        self.closed = False
        self._changed = asyncio.Event()

    def reset(self) -> None:
        """Start a new spawn's log; followers of the old one move over to it."""
        self.events = []
        self.closed = False
        self._wake()

    def add(self, event: ProgressEvent) -> None:
        self.events.append(event)
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def follow(self) -> AsyncIterator[ProgressEvent]:
        seen = 0
        while True:
            changed = self._changed
            events = self.events
            while seen < len(events):
                yield events[seen]
                seen += 1
            if self.closed:
                return
            await changed.wait()
            if self.events is not events:  # a new spawn began: start over on its events
                seen = 0
