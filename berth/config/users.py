"""The ``users`` section: allowed users and admins, inline or from the seed's ``userlist``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from berth.config.base import Section
from berth.config.fields import Username


def _dedupe(names: list[str]) -> list[str]:
    # Names are lowercased on the way in, so "Alice" and "alice" are one user: keep the first.
    return list(dict.fromkeys(names))


class UsersConfig(Section):
    allowed: list[Username] = Field(
        [],
        description="User names that may log in (lowercased, as JupyterHub does). With "
        "native accounts `berth up` makes their accounts (one-time passwords) and sign-up "
        "cannot take these names; with OAuth they are the allow list.",
    )
    admins: list[Username] = Field(
        [],
        description="User names with admin rights (admin page, other users' servers). Admins "
        "may always log in.",
    )
    userlist_file: Path | None = Field(
        None,
        description="A file in the seed's `userlist` format, one `name` or `name admin` per "
        "line (`#` comments allowed), relative to berth.yaml. Its names are added to "
        "`allowed` and `admins`.",
    )

    _dedupe_allowed = field_validator("allowed", "admins")(_dedupe)

    def names_anyone(self) -> bool:
        """Does this section name at least one person (before the userlist file is read)?"""
        return bool(self.allowed or self.admins or self.userlist_file)
