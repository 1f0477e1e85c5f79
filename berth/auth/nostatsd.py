"""A do-nothing statsd client for NativeAuthenticator's login page on JupyterHub 6.

NativeAuthenticator 1.3.0 (the newest release) times each login with ``self.statsd``, the
handler's statsd client. JupyterHub 6 removed statsd, so on it that attribute does not exist and
every login ends in a 500. Berth's login handler (berth/auth/native.py) answers ``statsd`` with
the hub's client where the hub still has one (JupyterHub 5) and with :class:`NullStatsd`
otherwise. Remove this once NativeAuthenticator stops calling statsd.
"""

from __future__ import annotations

from typing import Any


class NullTimer:
    """What ``statsd.timer(name)`` returns: started and stopped, measures and sends nothing."""

    ms = 0.0

    def start(self) -> NullTimer:
        return self

    def stop(self, send: bool = True) -> NullTimer:
        return self

    def send(self) -> None:
        return None


class NullStatsd:
    """The calls NativeAuthenticator and JupyterHub 5's handlers make on a statsd client."""

    def timer(self, stat: str, rate: float = 1) -> NullTimer:
        return NullTimer()

    def incr(self, stat: str, count: int = 1, rate: float = 1) -> None:
        return None

    def timing(self, stat: str, delta: Any, rate: float = 1) -> None:
        return None

    def gauge(self, stat: str, value: Any, rate: float = 1, delta: bool = False) -> None:
        return None


def statsd_of(settings: dict[str, Any]) -> Any:
    """The hub's statsd client from the Tornado settings, or a NullStatsd when it has none."""
    return settings.get("statsd") or NullStatsd()
