"""Named volumes: created on first use, their root handed to the container user.

Docker creates the mount point of a fresh named volume owned by root when the image has no
directory there (when it has one, Docker copies that directory's content and ownership into the
fresh volume). So when Berth creates a volume itself, it runs one short-lived container from the
same image, as root with only ``CAP_CHOWN``, no network and ``no-new-privileges``, mounting the
volume at the same target (so Docker's copy-up happens exactly as for the user's container), and
chowns the volume root to the container user -- only if that root is still the empty,
root-owned directory Docker made. An existing volume is never touched, and nothing is chowned
recursively.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import errors, specs
from .engine import Engine
from .images import Report
from .specs import NO_NEW_PRIVILEGES, ROLE_VOLUME_INIT, Identity, Privileges, labels


def volume_create_kwargs(name: str, identity: Identity) -> dict[str, Any]:
    """Keyword arguments for ``APIClient.create_volume``."""
    return {"name": name, "driver": "local", "labels": labels(identity, role="volume")}


def volume_owner(image_user: str, environment: Mapping[str, str], privileges: Privileges) -> str:
    """Who must own a fresh volume: ``uid[:gid]`` or a user name; ``""`` when root is fine."""
    if privileges.user == "root":  # docker-stacks start.sh switches to NB_UID:NB_GID
        return f"{environment.get('NB_UID', '1000')}:{environment.get('NB_GID', '100')}"
    user = image_user.strip()
    if user in {"", "root", "0", "0:0", "root:root"}:
        return ""
    return user


# Runs as root with CAP_CHOWN only. Resolves the owner inside the image (it may be a name),
# then chowns the volume's root directory -- only when that is still the empty, root-owned
# directory Docker made for a fresh volume, so no existing file is ever touched.
VOLUME_INIT_SCRIPT = r"""set -eu
target="$1"; owner="$2"
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
if [ "$(stat -c %u "$target")" = 0 ] && [ -z "$(ls -A "$target")" ]; then
  chown "$uid:$gid" "$target"
fi
"""


def volume_init_kwargs(
    image: str, volume: str, target: str, owner: str, identity: Identity
) -> dict[str, Any]:
    """A short-lived root container (CAP_CHOWN only, no network) that chowns a fresh volume."""
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
            "cap_add": ["CHOWN"],
            "security_opt": [NO_NEW_PRIVILEGES],
            "network_mode": "none",
            "mem_limit": 64 * 1024**2,
        },
    }


async def prepare_volumes(
    engine: Engine,
    spec: specs.ContainerSpec,
    image_info: dict[str, Any],
    timeout: float,
    report: Report,
) -> list[str]:
    """Create the missing named volumes of ``spec``; returns the names created."""
    image_user = str((image_info.get("Config") or {}).get("User") or "")
    owner = volume_owner(
        str(spec.extra_create_kwargs.get("user") or image_user),
        spec.environment,
        spec.privileges,
    )
    created: list[str] = []
    for mount in spec.mounts:
        if mount.is_host_path or await engine.inspect_volume(mount.source) is not None:
            continue
        report({"progress": 65, "message": f"Creating volume {mount.source}"})
        await engine.create_volume(volume_create_kwargs(mount.source, spec.identity))
        created.append(mount.source)
        if mount.read_only or not owner:
            continue
        kwargs = volume_init_kwargs(spec.image, mount.source, mount.target, owner, spec.identity)
        status, logs = await engine.run_to_completion(kwargs, timeout)
        if status != 0:
            raise errors.volume_init_failed(mount.source, status, logs)
    return created
