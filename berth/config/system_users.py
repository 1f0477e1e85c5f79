"""The ``system_users`` section of berth.yaml: `backend: system-users` under `berth up`.

Each user's server runs as the host account of the same name, with that account's home
directory. Two things decide whether that is safe, and both are checked here:

* **Login names become host accounts.** Berth's logins (native accounts, GitHub, OpenID
  Connect) are not the host's (PAM is not available in the hub's container), so a name that
  logs in is trusted to be the host account of that name only when the operator says so
  (``trust_login_names: true``) *and* nobody can choose their own name freely: native sign-up
  must be off (accounts come from ``users.*`` and ``berth users add``), and an OAuth provider
  may not let every one of its accounts in (``allow_all``).
* **Homes are a fixed directory's children.** ``host_home`` is ``<root>/<…{username}…>``; the
  engine guard lets containers bind-mount exactly those directories (see berth/guard/homes.py)
  and refuses every other host path, so the root may not be a system directory.
"""

from __future__ import annotations

import posixpath
import string
from typing import Any

from pydantic import Field, field_validator

from berth.config.base import Section
from berth.config.fields import ContainerPath
from berth.homeroots import home_root_problem

HOME_FIELDS = frozenset({"username"})


def _fields(template: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{template!r} is not a valid template: {exc}") from None
    found = []
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in HOME_FIELDS:
            raise ValueError(f"unknown field {{{field}}} (only {{username}})")
        if spec or conversion:
            raise ValueError("{username} cannot be formatted or converted")
        found.append(field)
    return found


def split_host_home(template: str) -> tuple[str, str]:
    """(homes root, the last part with ``{username}``) of a valid ``host_home``."""
    return posixpath.dirname(template), posixpath.basename(template)


class SystemUsersConfig(Section):
    trust_login_names: bool = Field(
        False,
        description="Confirm that every name that logs in is the host account of that name: "
        "its server runs as that account, with its files. Required with `backend: "
        "system-users`, which also refuses native sign-up and OAuth `allow_all` (they let "
        "people pick a name, and so someone else's account).",
    )
    host_home: str = Field(
        "/home/{username}",
        description="Each user's home on the host, mounted read-write at `image_home`: a "
        "directory directly inside a fixed homes root, the last part containing `{username}` "
        "(the account name). It must exist and belong to the account. The root may not be `/` "
        "nor a system directory (`/etc`, `/var/lib`, `/root`, …): the engine guard lets the hub "
        "bind-mount exactly its children.",
    )
    image_home: ContainerPath = Field(
        "/home/{username}",
        description="Where the home is mounted in the user's container; also `HOME` and the "
        "directory Jupyter opens in. May contain `{username}`.",
    )
    min_uid: int = Field(
        1000,
        ge=1,
        le=2**31 - 1,
        description="Accounts with a lower uid are system accounts (daemon, www-data, …) and are "
        "refused, as uid 0 always is.",
    )

    @field_validator("host_home")
    @classmethod
    def _host_home(cls, value: str) -> str:
        fields = _fields(value)
        root, last = split_host_home(value)
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must be an absolute path")
        if fields != ["username"] or "{username}" not in last or "{" in root:
            raise ValueError(
                f"{value!r} must contain {{username}} once, in its last part (a directory "
                "directly inside a fixed homes root, such as '/home/{username}')"
            )
        if problem := home_root_problem(root):
            raise ValueError(f"homes root: {problem}")
        return value

    @field_validator("image_home")
    @classmethod
    def _image_home(cls, value: str) -> str:
        _fields(value)
        if ".." in value.split("/"):
            raise ValueError(f"{value!r} must not contain '..'")
        return value

    def homes_root(self) -> str:
        return split_host_home(self.host_home)[0]


def system_users_problem(cfg: Any) -> tuple[str, str] | None:
    """(key, message) when ``backend`` and ``system_users`` do not fit together, or None.

    ``cfg`` is the whole BerthConfig (typed loosely: the schema module imports this one)."""
    section = cfg.system_users
    if cfg.backend != "system-users":
        if section != SystemUsersConfig():
            return (
                "system_users",
                f"settings for system users given but backend is {cfg.backend!r}: set backend: "
                "system-users or remove system_users",
            )
        return None
    if not section.trust_login_names:
        return (
            "system_users.trust_login_names",
            "backend: system-users runs each user's server as the host account with the same "
            "name as their login; Berth's logins are not the host's, so confirm that every "
            "login name is its owner's host account name with trust_login_names: true",
        )
    if cfg.auth.type == "native" and cfg.auth.native.enable_signup:
        return (
            "auth.native.enable_signup",
            "with backend: system-users, sign-up would let a person choose a host account's "
            "name (and get its files): set enable_signup: false and make accounts with "
            "users.allowed / users.admins or `berth users add`",
        )
    oauth = cfg.auth.oauth
    if oauth is not None and oauth.allow_all:
        return (
            f"auth.{cfg.auth.type}.allow_all",
            "with backend: system-users, every account of the provider could log in under a "
            "name that may be a host account's: list users or provider groups instead",
        )
    return None
