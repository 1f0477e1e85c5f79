"""berth.yaml's `servers` section: several servers per user (JupyterHub's named servers).

With ``named: true`` a user may run, besides their default server, up to ``limit_per_user``
named servers; each picks its own image from ``images.allowed`` on the options form and gets
its own volume (the volume name template carries the server name; the default server keeps the
volume it always had). With ``backend: swarm`` each server is its own service (the service name
carries the server suffix) with its own volume the same way. With ``backend: system-users`` a
user's servers are separate containers that share the one thing that is the user's there, the
host home: as when one person logs in twice on a host.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from berth.config.base import Section
from berth.config.storage import SERVER_FIELDS, template_fields


class ServersConfig(Section):
    named: bool = Field(
        False,
        description="Let each user run named servers besides their default one (JupyterHub's "
        "`allow_named_servers`); the home page lists them.",
    )
    limit_per_user: int = Field(
        3,
        ge=0,
        le=1000,
        description="Most named servers one user may have (running or stopped); 0: no limit. "
        "The default server does not count.",
    )


def servers_problem(cfg: Any) -> tuple[str, str] | None:
    """(key, message) when named servers do not fit the rest of the file, or None.

    ``cfg`` is the whole BerthConfig (typed loosely: the schema module imports this one)."""
    section = cfg.servers
    if not section.named:
        if section.limit_per_user != ServersConfig().limit_per_user:
            return ("servers.limit_per_user", "has no effect without servers.named: true")
        return None
    if cfg.backend == "system-users":
        return None  # no volumes: every server of the user mounts the user's home
    template = cfg.storage.volume_name_template
    if not template_fields(template) & SERVER_FIELDS:
        return (
            "storage.volume_name_template",
            f"{template!r} gives all of a user's servers one volume, which two running servers "
            "would share; with servers.named: true add {server_suffix} (e.g. "
            f"{template + '{server_suffix}'!r}): the default server keeps its volume name",
        )
    return None
