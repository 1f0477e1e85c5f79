"""Free TCP ports on 127.0.0.1 for the processes and containers a test starts.

A free port is found by binding port 0 and closing the probe; until the port's user binds it,
the next probe may be given the very same port (the kernel picks one at random among the free
ones), and two parts of one test (a hub's proxy and its API, Pebble's ports, a deployment's two
published ports) would then share it and one of them fail to start. So this test process never
hands out a port twice. Importable from tests/ and below (tests/conftest.py puts tests/ on
sys.path).
"""

from __future__ import annotations

import socket

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port that is free on 127.0.0.1 now and that no caller in this process was given."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
