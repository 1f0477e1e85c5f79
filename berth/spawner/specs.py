"""Pure builders: spawner settings in, Docker Engine API keyword arguments out.

Nothing here talks to the engine. :func:`container_create_kwargs` returns the keyword arguments
for ``docker.APIClient.create_container`` (with ``host_config`` holding the keyword arguments for
``APIClient.create_host_config``), so tests can compare plain dicts, and the I/O layer only has
to turn the host config dict into the engine's form.

Privileges
----------
User containers start as the image's own (unprivileged) user with ``no-new-privileges`` and
every capability dropped. The docker-stacks start script needs root only for some switches,
and then only these capabilities (see :func:`start_privileges`):

* any root start (``NB_USER``, ``NB_UID``, ``NB_GID``, ``NB_GROUP``, ``CHOWN_HOME``,
  ``CHOWN_EXTRA``, ``GRANT_SUDO`` in the environment, or ``run_as_root``): ``SETUID`` and
  ``SETGID`` (start.sh drops to ``NB_UID``/``NB_GID`` with ``setpriv``), ``CHOWN``, ``FOWNER`` and
  ``DAC_OVERRIDE`` (fitting the image user to ``NB_USER``/``NB_UID``, moving and chown-ing its
  home, ``CHOWN_EXTRA``);
* ``GRANT_SUDO=yes``: additionally ``AUDIT_WRITE`` (sudo's audit record), ``KILL`` and
  ``FSETID``, and ``no-new-privileges`` is *not* set, because ``sudo`` is a setuid program.
  The user's root is still bounded by this list of capabilities.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from berth import names
from berth.labels import (  # `X as X`: the spawners and their tests know them as specs.*
    LABEL_MANAGED as LABEL_MANAGED,
)
from berth.labels import (
    LABEL_PREFIX as LABEL_PREFIX,
)
from berth.labels import (
    LABEL_ROLE as LABEL_ROLE,
)
from berth.labels import (
    LABEL_SERVER as LABEL_SERVER,
)
from berth.labels import (
    LABEL_SPAWNER as LABEL_SPAWNER,
)
from berth.labels import (
    LABEL_USER as LABEL_USER,
)
from berth.labels import (
    LABEL_USER_CREATED as LABEL_USER_CREATED,
)
from berth.labels import (
    LABEL_USER_ID as LABEL_USER_ID,
)
from berth.labels import (
    ROLE_HUB_DATA as ROLE_HUB_DATA,
)
from berth.labels import (
    ROLE_SHARED_VOLUME as ROLE_SHARED_VOLUME,
)
from berth.labels import (
    ROLE_SINGLEUSER as ROLE_SINGLEUSER,
)
from berth.labels import (
    ROLE_VOLUME as ROLE_VOLUME,
)
from berth.labels import (
    ROLE_VOLUME_INIT as ROLE_VOLUME_INIT,
)

PER_USER_FIELDS = frozenset({"username", "servername", "server_suffix"})
HEALTHCHECK_INTERVAL_NS = 30 * 10**9

ROOT_START_SWITCHES = (
    "NB_USER",
    "NB_UID",
    "NB_GID",
    "NB_GROUP",
    "CHOWN_HOME",
    "CHOWN_EXTRA",
    "GRANT_SUDO",
)
ROOT_START_CAPS = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID")
GRANT_SUDO_EXTRA_CAPS = ("AUDIT_WRITE", "FSETID", "KILL")
NO_NEW_PRIVILEGES = "no-new-privileges"


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``extra`` into a copy of ``base``: dicts merge recursively, other values replace."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "yes", "true", "on"}


@dataclass(frozen=True)
class Mount:
    """A named volume (``source`` is a name) or a host path (``source`` is absolute)."""

    source: str
    target: str
    read_only: bool = False
    per_user: bool = True  # the source template names the user: ownership is checked

    @property
    def is_host_path(self) -> bool:
        return self.source.startswith("/")


@dataclass(frozen=True)
class Privileges:
    user: str | None  # None: the image's USER
    cap_add: tuple[str, ...] = ()
    no_new_privileges: bool = True
    group_add: tuple[int, ...] = ()  # supplementary groups (system users)


@dataclass(frozen=True)
class Resources:
    mem_limit: int | None = None
    cpu_limit: float | None = None
    mem_guarantee: int | None = None
    cpu_guarantee: float | None = None
    pids_limit: int | None = None


@dataclass(frozen=True)
class Networking:
    port: int = 8888
    network_name: str = ""  # "" = Docker's default bridge
    use_internal_ip: bool = False  # reach the server by its address on network_name
    host_ip: str = "127.0.0.1"  # otherwise: publish `port` on this host address


@dataclass(frozen=True)
class Identity:
    username: str
    servername: str = ""
    spawner: str = "ContainerSpawner"
    prefix: str = ""
    user_id: str = ""  # JupyterHub's id of the user; "" = unknown
    user_created: str = ""  # when JupyterHub created the account (UTC, ISO 8601, seconds)


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    identity: Identity
    command: Sequence[str] | None = None  # None: the image's CMD
    environment: Mapping[str, str] = field(default_factory=dict)
    mounts: Sequence[Mount] = ()
    resources: Resources = Resources()
    networking: Networking = Networking()
    privileges: Privileges = Privileges(user=None)
    extra_create_kwargs: Mapping[str, Any] = field(default_factory=dict)
    extra_host_config: Mapping[str, Any] = field(default_factory=dict)
    working_dir: str | None = None  # None: the image's WORKDIR
    # docker.types.DeviceRequest keyword arguments (GPUs, see berth.spawner.gpus)
    device_requests: Sequence[Mapping[str, Any]] = ()


def start_privileges(environment: Mapping[str, str], run_as_root: bool = False) -> Privileges:
    """The user, capabilities and no-new-privileges flag the requested switches need."""
    grant_sudo = truthy(environment.get("GRANT_SUDO"))
    switches = [key for key in ROOT_START_SWITCHES if key != "GRANT_SUDO" and environment.get(key)]
    if not (run_as_root or grant_sudo or switches):
        return Privileges(user=None)
    caps = set(ROOT_START_CAPS)
    if grant_sudo:
        caps.update(GRANT_SUDO_EXTRA_CAPS)
    return Privileges(user="root", cap_add=tuple(sorted(caps)), no_new_privileges=not grant_sudo)


def labels(identity: Identity, role: str = ROLE_SINGLEUSER) -> dict[str, str]:
    """Labels that mark a container or volume as Berth's and say whose it is."""
    found = {
        LABEL_MANAGED: "true",
        LABEL_ROLE: role,
        LABEL_USER: identity.username,
        LABEL_SERVER: identity.servername,
        LABEL_SPAWNER: identity.spawner,
        LABEL_PREFIX: identity.prefix,
    }
    if identity.user_id:
        found[LABEL_USER_ID] = identity.user_id
    if identity.user_created:
        found[LABEL_USER_CREATED] = identity.user_created
    return found


def owned_by(found_labels: Mapping[str, str] | None, identity: Identity) -> bool:
    """Whether an existing object's labels say it belongs to ``identity``'s server."""
    found = found_labels or {}
    return (
        found.get(LABEL_MANAGED) == "true"
        and found.get(LABEL_USER) == identity.username
        and found.get(LABEL_SERVER) == identity.servername
    )


def template_fields(template: str) -> set[str]:
    """The field names a template uses (``{username}`` -> ``username``)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return set()  # render() reports the broken template
    return {re.split(r"[.\[!:]", f, maxsplit=1)[0] for _, f, _, _ in parsed if f}


def _render_path(template: str, namespace: Mapping[str, str]) -> str:
    return names.render(template, namespace)


def mounts_from_config(
    volumes: Mapping[str, str | Mapping[str, str]],
    read_only_volumes: Mapping[str, str],
    namespace: Mapping[str, str],
) -> list[Mount]:
    """Render ``{source: target}`` (or ``{source: {"bind": target, "mode": "ro"}}``) templates.

    Sources starting with ``/`` are host paths; anything else is a named volume, whose rendered
    name must be valid for Docker.
    """
    mounts: list[Mount] = []
    entries: list[tuple[str, str | Mapping[str, str], bool]] = [
        *((src, dst, False) for src, dst in volumes.items()),
        *((src, dst, True) for src, dst in read_only_volumes.items()),
    ]
    for source_t, target_t, forced_ro in entries:
        if isinstance(target_t, Mapping):
            target_template = target_t["bind"]
            read_only = forced_ro or target_t.get("mode", "rw") == "ro"
        else:
            target_template, read_only = target_t, forced_ro
        source = _render_path(source_t, namespace)
        target = _render_path(target_template, namespace)
        if not source.startswith("/"):
            names.check_docker_name(source, "volume")
        if not target.startswith("/"):
            raise names.InvalidNameError(f"mount target {target!r} must be an absolute path")
        # Any per-server field makes it someone's volume: `{prefix}-data{server_suffix}` gives
        # alice's and bob's server "proj" one name, and the ownership check must then refuse.
        per_user = bool(PER_USER_FIELDS & set(template_fields(source_t)))
        mounts.append(Mount(source, target, read_only, per_user))
    return mounts


def bind_mode(mount: Mount) -> str:
    """``rw``/``ro``; named volumes also ``nocopy``: Docker's copy of the image directory into an
    empty volume happens once, when Berth creates the volume (see :mod:`.volumes`), not at every
    mount of a still-empty volume (which would also reset the owner of its root each time)."""
    mode = "ro" if mount.read_only else "rw"
    return mode if mount.is_host_path else f"{mode},nocopy"


# The Engine API's keyword arguments, as the builders return them (plain dicts, so tests
# compare them whole; extra_*_kwargs may add any key the SDK accepts, hence Any values).
HostConfigKwargs = dict[str, Any]  # for docker.APIClient.create_host_config
# For docker.APIClient.create_container, "host_config" holding HostConfigKwargs (the engine
# turns it into the API's form): what ContainerRuntime.create_container takes.
CreateContainerKwargs = dict[str, Any]
CreateVolumeKwargs = dict[str, Any]  # for docker.APIClient.create_volume


def host_config_kwargs(spec: ContainerSpec) -> HostConfigKwargs:
    """Keyword arguments for ``APIClient.create_host_config``."""
    hc: HostConfigKwargs = {
        "binds": {m.source: {"bind": m.target, "mode": bind_mode(m)} for m in spec.mounts},
        "cap_drop": ["ALL"],
        "cap_add": list(spec.privileges.cap_add),
        "security_opt": [NO_NEW_PRIVILEGES] if spec.privileges.no_new_privileges else [],
        "init": False,  # the images bring tini as PID 1
    }
    if spec.privileges.group_add:
        hc["group_add"] = [str(gid) for gid in spec.privileges.group_add]
    res = spec.resources
    if res.mem_limit:
        hc["mem_limit"] = res.mem_limit
        hc["memswap_limit"] = res.mem_limit  # no swap beyond the limit: the limit is the limit
    if res.mem_guarantee:
        hc["mem_reservation"] = res.mem_guarantee
    if res.cpu_limit:
        hc["nano_cpus"] = int(res.cpu_limit * 1e9)
    if res.cpu_guarantee:
        hc["cpu_shares"] = max(2, int(res.cpu_guarantee * 1024))
    if res.pids_limit:
        hc["pids_limit"] = res.pids_limit
    if spec.device_requests:
        hc["device_requests"] = [dict(request) for request in spec.device_requests]
    net = spec.networking
    if net.network_name:
        hc["network_mode"] = net.network_name
    if not net.use_internal_ip:
        hc["port_bindings"] = {net.port: (net.host_ip,)}  # engine picks a free host port
    return deep_merge(hc, spec.extra_host_config)


def container_create_kwargs(spec: ContainerSpec) -> CreateContainerKwargs:
    """Keyword arguments for ``APIClient.create_container`` (``host_config`` still a dict)."""
    kwargs: CreateContainerKwargs = {
        "image": spec.image,
        "name": spec.name,
        "command": list(spec.command) if spec.command else None,
        "environment": dict(spec.environment),
        "labels": labels(spec.identity),
        "ports": [spec.networking.port],
        "detach": True,
        "host_config": host_config_kwargs(spec),
        # The hub watches its servers itself (readiness, poll). The images' own 3-second check
        # would cost every booting container a runc exec and a Python start each time, which
        # under many concurrent spawns is CPU taken from the servers starting; the image's test
        # is kept (0 means inherit), only run less often.
        "healthcheck": {
            "interval": HEALTHCHECK_INTERVAL_NS,
            "start_period": HEALTHCHECK_INTERVAL_NS,
        },
    }
    if spec.privileges.user is not None:
        kwargs["user"] = spec.privileges.user
    if spec.working_dir:
        kwargs["working_dir"] = spec.working_dir
    return deep_merge(kwargs, spec.extra_create_kwargs)
