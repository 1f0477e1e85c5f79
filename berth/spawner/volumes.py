"""Named volumes: created on first use, handed to the container user.

At the first mount of an empty volume, Docker copies the image's directory at the mount point
into it (content *and* the owner of the volume root), or, if the image has no such directory,
leaves it empty with a root-owned root. It repeats that at every mount while the volume is still
empty, resetting the root's owner each time. Neither fits a container user other than that
owner (the second case fits nobody: the user cannot write to their own volume).

So right after creating a volume, Berth runs one short-lived container from the same image,
as root with only ``CAP_CHOWN`` and ``CAP_DAC_OVERRIDE``, no network and
``no-new-privileges``, mounting the volume at the same target (Docker's copy happens there, once),
which hands the volume to the container user (``NB_UID:NB_GID`` for a root start, else the
image's ``USER``) unless it already belongs to them. The users' containers then mount named
volumes with ``nocopy`` (:func:`~berth.spawner.specs.bind_mode`), so nothing resets the owner.
A volume that already existed is never touched: Berth only chowns what it has just created, and
it mounts an existing one only when its labels say whose it is (see :mod:`.volume_policy`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from . import errors, specs, volume_policy
from .engine_api import EngineRecord, VolumeStore
from .images import Report
from .specs import (
    LABEL_MANAGED,
    LABEL_PREFIX,
    LABEL_ROLE,
    LABEL_USER,
    NO_NEW_PRIVILEGES,
    ROLE_VOLUME_INIT,
    CreateContainerKwargs,
    CreateVolumeKwargs,
    Identity,
    Privileges,
    labels,
    owned_by,
)


def volume_create_kwargs(
    name: str, identity: Identity, role: str = specs.ROLE_VOLUME
) -> CreateVolumeKwargs:
    """Keyword arguments for ``APIClient.create_volume``: labelled with the owner."""
    owner = (
        identity
        if role == specs.ROLE_VOLUME
        else Identity("", "", identity.spawner, identity.prefix)
    )
    return {"name": name, "driver": "local", "labels": labels(owner, role=role)}


def volume_owner(image_user: str, environment: Mapping[str, str], privileges: Privileges) -> str:
    """Who must own a fresh volume: ``uid[:gid]`` or a user name; ``""`` when root is fine."""
    if privileges.user == "root":  # docker-stacks start.sh switches to NB_UID:NB_GID
        return f"{environment.get('NB_UID', '1000')}:{environment.get('NB_GID', '100')}"
    user = image_user.strip()
    if user in {"", "root", "0", "0:0", "root:root"}:
        return ""
    return user


# Runs as root with CAP_CHOWN (and CAP_DAC_OVERRIDE to walk what Docker copied in) only,
# on a volume this very spawn has just created: resolves the owner inside the image (it may be
# a name), then hands the volume to it -- its root, plus whatever Docker copied into it from the
# image's directory at the mount point. Never run on a volume that existed before.
VOLUME_INIT_SCRIPT = r"""set -eu
target="$1"; owner="$2"
[ -n "$owner" ] || exit 0
user="${owner%%:*}"; group=""
case "$owner" in *:*) group="${owner#*:}" ;; esac
case "$user" in ''|*[!0-9]*) uid="$(id -u "$user")" ;; *) uid="$user" ;; esac
if [ -z "$group" ]; then gid="$(id -g "$user" 2>/dev/null || echo 0)"
else
  case "$group" in
    *[!0-9]*) gid="$(getent group "$group" | cut -d: -f3)" ;;
    *) gid="$group" ;;
  esac
fi
if [ "$(stat -c %u:%g "$target")" != "$uid:$gid" ]; then
  chown -R "$uid:$gid" "$target"
fi
"""


def volume_init_kwargs(
    image: str, volume: str, target: str, owner: str, identity: Identity
) -> CreateContainerKwargs:
    """A short-lived root container (CAP_CHOWN, no network) that chowns a fresh volume."""
    return {
        "image": image,
        "name": None,
        "entrypoint": ["/bin/sh", "-c", VOLUME_INIT_SCRIPT, "berth-volume-init"],
        "command": [target, owner],
        "user": "root",
        "network_disabled": True,
        "labels": labels(identity, role=ROLE_VOLUME_INIT),
        "detach": True,
        "host_config": {
            "binds": {volume: {"bind": target, "mode": "rw"}},
            "cap_drop": ["ALL"],
            # Not CAP_DAC_READ_SEARCH, which would also unlock open_by_handle_at (a way out of
            # any container to the host's files); DAC_OVERRIDE covers reading what it walks.
            "cap_add": ["CHOWN", "DAC_OVERRIDE"],
            "security_opt": [NO_NEW_PRIVILEGES],
            "network_mode": "none",
            "mem_limit": 64 * 1024**2,
        },
    }


async def prepare_volumes(
    engine: VolumeStore,
    spec: specs.ContainerSpec,
    image_info: EngineRecord,
    timeout: float,
    report: Report,
    log: logging.Logger | logging.LoggerAdapter[Any],
    adopt_unlabelled: bool = False,
) -> list[str]:
    """Check the existing named volumes of ``spec`` are this user's, create the missing ones;
    returns the names created. Refuses (before creating anything) a volume that is not theirs."""
    image_user = str((image_info.get("Config") or {}).get("User") or "")
    owner = volume_owner(
        str(spec.extra_create_kwargs.get("user") or image_user),
        spec.environment,
        spec.privileges,
    )
    missing: list[specs.Mount] = []
    for mount in spec.mounts:
        if mount.is_host_path:
            continue
        found = await engine.inspect_volume(mount.source)
        if found is None:
            missing.append(mount)
            continue
        refusal = volume_policy.refusal(mount, found.get("Labels"), spec.identity, adopt_unlabelled)
        if refusal is not None:
            log.warning("Refused volume %s for %s: %s", mount.source, spec.identity, refusal)
            raise errors.volume_refused(refusal)
    created: list[str] = []
    for mount in missing:
        report({"progress": 65, "message": f"Creating volume {mount.source}"})
        role = volume_policy.creation_role(mount)
        await engine.create_volume(volume_create_kwargs(mount.source, spec.identity, role))
        created.append(mount.source)
        chown_to = "" if mount.read_only else owner
        kwargs = volume_init_kwargs(spec.image, mount.source, mount.target, chown_to, spec.identity)
        status, logs = await engine.run_to_completion(kwargs, timeout)
        if status != 0:
            raise errors.volume_init_failed(mount.source, status, logs)
        owner_text = chown_to or "-"
        log.info("Created volume %s for %s (owner %s)", mount.source, mount.target, owner_text)
    return created


async def remove_interrupted_inits(
    engine: VolumeStore, identity: Identity, log: logging.Logger | logging.LoggerAdapter[Any]
) -> None:
    """Undo volume preparations that a killed hub left half done.

    A volume-init container outlives its spawn only when the hub died before removing it
    (run_to_completion removes it otherwise). Its volume was created by that very spawn and no
    user server has mounted it yet, so it holds nothing of the user's; but its owner may never
    have been set, and an existing volume is never chowned again. So both go, and the next
    start creates and prepares the volume afresh. (The engine guard lets the hub delete only
    this deployment's labelled volumes; a hub could destroy those anyway, through a container
    that mounts them, so this grants it nothing new.)
    """
    found = await engine.list_containers(
        {
            LABEL_MANAGED: "true",
            LABEL_PREFIX: identity.prefix,
            LABEL_ROLE: ROLE_VOLUME_INIT,
            LABEL_USER: identity.username,
        }
    )
    for container in found:
        if not owned_by(container.get("Labels"), identity):
            continue
        await engine.remove_container(container["Id"])
        for mount in container.get("Mounts") or []:
            if mount.get("Type") != "volume" or not mount.get("Name"):
                continue
            volume = await engine.inspect_volume(mount["Name"])
            if volume and owned_by(volume.get("Labels"), identity):
                await engine.remove_volume(volume["Name"])
                log.warning("Removed volume %s: its preparation was interrupted", volume["Name"])
