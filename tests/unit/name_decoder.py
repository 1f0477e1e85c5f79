"""The inverse of :func:`berth.names.escape`, and container names rendered as the spawner does.

Berth itself never decodes a name; the tests do, to show that the escaping is injective (every
escaped name decodes back to exactly one name).
"""

from __future__ import annotations

import re

from berth import names

_ESCAPED_RE = re.compile(r"-([0-9a-f]{2})|([a-z0-9])")


def unescape(escaped: str) -> str:
    """Invert :func:`berth.names.escape`; ``ValueError`` for what it cannot have produced."""
    raw = bytearray()
    pos = 0
    while pos < len(escaped):
        match = _ESCAPED_RE.match(escaped, pos)
        if match is None:
            raise ValueError(f"not an escaped name: {escaped!r} (at offset {pos})")
        hex_byte, plain = match.groups()
        if hex_byte is not None:
            raw.append(int(hex_byte, 16))
        else:
            raw.extend(plain.encode("ascii"))
        pos = match.end()
    text = raw.decode("utf-8", "surrogatepass")
    if names.escape(text) != escaped:  # e.g. "-61" decodes to "a", which escapes as "a"
        raise ValueError(f"not a canonical escaped name: {escaped!r}")
    return text


def container_name(template: str, prefix: str, username: str, servername: str = "") -> str:
    """Render and check a container name for ``(username, servername)``, as the spawner does."""
    namespace = names.template_namespace(prefix, username, servername)
    return names.check_docker_name(names.render(template, namespace), "container")
