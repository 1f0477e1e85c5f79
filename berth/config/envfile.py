"""Parser for ``KEY=VALUE`` files such as the seed deployment's ``oauth.env``.

The format is Docker Compose's env file: one assignment per line, ``#`` comments and blank
lines ignored, an optional ``export`` prefix, and values optionally wrapped in matching
single or double quotes (taken literally, with no escapes or interpolation).
"""

from __future__ import annotations

import re

from berth.config.errors import LineError

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EnvFileError(LineError):
    """A bad line in an env file (its value is never part of the message)."""


def parse_env_file(text: str, source: str = "env file") -> dict[str, str]:
    """Return the assignments in ``text``; bad lines raise without echoing their values."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY_RE.match(key):
            # The line itself is not shown: it may be a pasted secret.
            raise EnvFileError(
                source,
                number,
                "expected KEY=VALUE with a name of letters, digits and _ before the '='",
            )
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values
