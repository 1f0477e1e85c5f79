"""Parser for the seed deployment's ``userlist`` file: ``name`` or ``name admin`` per line.

Blank lines and ``#`` comments (whole-line or trailing) are allowed; anything else on a line
is an error naming the file and line, so a typo such as ``jenny admn`` cannot silently make
or unmake an admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from berth.config.errors import LineError
from berth.config.fields import check_account_name


class UserlistError(LineError):
    """A bad line in a userlist file."""


@dataclass(frozen=True)
class UserlistEntry:
    name: str
    admin: bool
    line: int


def parse_userlist(text: str, source: str = "userlist") -> list[UserlistEntry]:
    """Parse ``text``; names are validated and lowercased like every other user name."""
    entries: list[UserlistEntry] = []
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) > 2 or (len(words) == 2 and words[1] != "admin"):
            raise UserlistError(
                source, number, f"expected 'NAME' or 'NAME admin', got {raw.strip()!r}"
            )
        try:
            name = check_account_name(words[0])
        except ValueError as exc:
            raise UserlistError(source, number, str(exc)) from None
        if name in first_seen:
            raise UserlistError(
                source, number, f"user {name!r} is already listed on line {first_seen[name]}"
            )
        first_seen[name] = number
        entries.append(UserlistEntry(name, len(words) == 2, number))
    return entries
