"""What `backend: system-users` adds to the `berth up` plan (pure).

The hub stays as it is (no new mount, no new capability): it looks accounts up in the copy of
the host's passwd and group that the engine guard keeps in their shared volume, and asks the
guard for containers that bind-mount one home each. The guard gets, read-only, the host's
``/etc`` (for that copy; it holds the engine's socket already, so this gives it nothing new)
and the homes root (to check each home: a real directory owned by the container's uid).
See berth/guard/homes.py, berth/guard/userdb.py and docs/deploy.md.
"""

from __future__ import annotations

from typing import Any

from berth.config.schema import BerthConfig
from berth.deploy import layout

HOST_ETC = "/etc"
GUARD_HOST_ETC = "/srv/berth/host-etc"  # the host's /etc in the guard (read-only)
USER_DB_DIR = f"{layout.ENGINE_DIR}/userdb"  # written by the guard, read by the hub


def add_to_guard(kwargs: dict[str, Any], cfg: BerthConfig) -> None:
    """The guard's extra arguments and read-only mounts (``kwargs`` is its create kwargs)."""
    root = cfg.system_users.homes_root()
    kwargs["command"] = [
        *kwargs["command"],
        "--home-root", root,
        "--user-db-from", GUARD_HOST_ETC,
        "--user-db-to", USER_DB_DIR,
    ]  # fmt: skip
    kwargs["volumes"] = {
        **kwargs["volumes"],
        HOST_ETC: {"bind": GUARD_HOST_ETC, "mode": "ro"},
        root: {"bind": root, "mode": "ro"},
    }


def with_hub_settings(config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The spawner reads the guard's copy of the user database and leaves the home checks to
    the guard (the hub cannot see the homes)."""
    spawner = {
        **config.get("SystemUserSpawner", {}),
        "passwd_file": f"{USER_DB_DIR}/passwd",
        "group_file": f"{USER_DB_DIR}/group",
        "check_host_home": False,
    }
    return {**config, "SystemUserSpawner": spawner}
