"""The files of a container's plan that land in one of its volumes, and how they get there.

Docker writes an archive uploaded into a created (not yet started) container through the
container's volume mounts; Podman 4.3 does not: it mounts volumes only while the container
runs, so the upload lands in the container's own layer, hidden under the mount (a new, empty
volume happens to receive it, copied up at the first start; a volume in use already, as the
hub's data volume on every later `berth up`, does not). So the files below a volume mount go
in through a short-lived helper that mounts the same volumes at the same paths and is running
when the archive is uploaded, on every engine (one path, the same result on both); the rest is
uploaded into the created container as before.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import PurePosixPath
from typing import Any

import docker
from docker.errors import APIError, NotFound

from berth.deploy import layout
from berth.deploy.containerplan import ContainerFiles, ContainerPlan, files_tar
from berth.errors import BerthError
from berth.labels import LABEL_MANAGED, LABEL_ROLE
from berth.spawner.specs import NO_NEW_PRIVILEGES

ROLE_HELPER = "files-helper"
# Long enough for one upload; the helper is removed (killed) right after it.
HELPER_SECONDS = 300


def split(plan: ContainerPlan) -> tuple[ContainerFiles, ContainerFiles, dict[str, str]]:
    """(files of the container's own layer, files below one of its volume mounts, the volumes
    those need: name -> mount path)."""
    mounts = {
        name: spec["bind"] for name, spec in (plan.create_kwargs.get("volumes") or {}).items()
    }
    own: ContainerFiles = {}
    in_volumes: ContainerFiles = {}
    needed: dict[str, str] = {}
    for path, file in plan.files.items():
        volume = next(
            (name for name, bind in mounts.items() if PurePosixPath(path).is_relative_to(bind)),
            None,
        )
        if volume is None:
            own[path] = file
        else:
            in_volumes[path] = file
            needed[volume] = mounts[volume]
    return own, in_volumes, needed


def helper_kwargs(image: str, volumes: dict[str, str]) -> dict[str, Any]:
    """`client.containers.create` arguments of the helper: the volumes at the container's own
    mount paths (so the plan's paths hold), no network, no capabilities, the hub's user."""
    return {
        "image": image,
        "name": f"berth-files-{uuid.uuid4().hex[:12]}",
        "entrypoint": ["sleep", str(HELPER_SECONDS)],
        "user": f"{layout.HUB_UID}:{layout.HUB_GID}",
        "network_disabled": True,
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": [NO_NEW_PRIVILEGES],
        "mem_limit": "64m",
        "labels": {LABEL_MANAGED: "true", LABEL_ROLE: ROLE_HELPER},
        "volumes": {name: {"bind": bind, "mode": "rw"} for name, bind in sorted(volumes.items())},
        "detach": True,
    }


def write(
    client: docker.DockerClient, image: str, files: ContainerFiles, volumes: dict[str, str]
) -> None:
    """Write `files` (absolute paths below the mounts of `volumes`) into those volumes."""
    try:
        helper = client.containers.create(**helper_kwargs(image, volumes))
    except APIError as exc:
        raise BerthError(
            f"cannot create the helper that writes files into volumes: {exc.explanation or exc}"
        ) from exc
    try:
        helper.start()
        helper.put_archive("/", files_tar(files))
    except APIError as exc:
        raise BerthError(
            f"cannot write files into volumes {sorted(volumes)}: {exc.explanation or exc}"
        ) from exc
    finally:
        with contextlib.suppress(NotFound, APIError):
            helper.remove(force=True)
