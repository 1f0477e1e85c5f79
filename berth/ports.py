"""Is a TCP port free on this host? Asked before the engine is, for a clear error."""

from __future__ import annotations

import errno
import socket


def port_free(address: str, port: int) -> bool:
    """True when nothing listens on address:port."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            # Only "in use" counts: a privileged port refused to a non-root caller is still
            # free for the engine, which publishes it as root.
            return exc.errno != errno.EADDRINUSE
    return True
