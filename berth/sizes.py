"""Byte sizes as operators write them (``512M``, ``2G``, ``1.5GiB``), read by one grammar.

Every place Berth reads a size uses :func:`parse_bytes`: berth.yaml's ``limits.memory``, the
spawners' ``mem_limit`` / ``mem_guarantee`` and ``berth run --memory``. A size is an integer
number of bytes, or a number with a suffix ``K``, ``M``, ``G`` or ``T`` (any case), optionally
written ``KiB``, ``MiB``, ``GiB``, ``TiB``. Units are powers of 1024, as in JupyterHub's
``ByteSpecification``. ``2GB`` is refused: it reads as 2 * 10**9 bytes as often as 2 GiB.
"""

from __future__ import annotations

import math
import re

UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:iB)?)?\s*$", re.IGNORECASE)
#: The engine's API holds sizes in a signed 64-bit integer.
MAX_BYTES = 2**63 - 1
EXPECTED = (
    "an integer number of bytes or a number with suffix K, M, G or T "
    "(powers of 1024; also KiB, MiB, GiB, TiB; e.g. 512M, 2G, 2GiB)"
)
TOO_LARGE = "must be less than 8388608T, the most Docker can hold"
# A wrong value is quoted at most this long in a message.
_SHOWN = 40


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 3]}..."


def parse_bytes(value: int | float | str | None) -> int | None:
    """``'2G'`` / ``'2GiB'`` -> 2147483648; an int stays; ``None`` stays ``None``.

    Raises ``ValueError`` (saying what was expected) for anything else, for negative sizes and
    for sizes the engine cannot hold. Booleans are refused (YAML reads ``yes`` as one).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected {EXPECTED}, got {_shown(value)}")
    if isinstance(value, int):
        size: int | float = value
    elif isinstance(value, float) and math.isfinite(value):
        size = value
    elif isinstance(value, str) and (match := _SIZE_RE.match(value)):
        digits, unit = match.groups()
        size = float(digits) * UNITS[(unit or "").upper()]
    else:
        raise ValueError(f"expected {EXPECTED}, got {_shown(value)}")
    if size < 0:
        raise ValueError(f"a byte size cannot be negative (got {_shown(value)})")
    if size > MAX_BYTES:  # also keeps int() away from inf (400 digits overflow a float)
        raise ValueError(f"a byte size {TOO_LARGE} (got {_shown(value)})")
    return int(size)
