"""The engine guard on a Swarm (``backend: swarm``): what it allows the hub, from berth.yaml.

On one engine the guard is a container (plan.py); on a Swarm it is a service pinned to the
manager beside the hub (swarm_plan.py): the only one with the manager's Engine API socket. It
serves its own socket in a local volume on the manager that the hub mounts read-only, so the hub
can make, watch and remove its users' services and nothing else (:mod:`berth.guard.services`).

Why a service and not a process in the hub's container: anything in the hub's container is the
hub's, so a compromised hub would hold the socket again. Why pinned to the manager: the hub is
(its volumes are local there), a unix socket is shared only through a local volume, and only a
manager's engine answers the Swarm's calls.
"""

from __future__ import annotations

from typing import Any

from berth.config.schema import BerthConfig
from berth.deploy import layout

DOCKER_SOCKET = layout.HOST_DOCKER_SOCKET


def served_images(spawner: dict[str, Any]) -> list[str]:
    """The images the hub's Swarm spawner may run, as its config names them (registry names)."""
    allowed = spawner.get("allowed_images") or []
    images = [spawner["image"], *(allowed.values() if isinstance(allowed, dict) else allowed)]
    return list(dict.fromkeys(images))


def guard_command(cfg: BerthConfig, spawner: dict[str, Any], reserved: list[str]) -> list[str]:
    """``python3 -m berth.guard --swarm …``: the overlay, the images, the users' volume
    template, the limits berth.yaml sets (unset ones: the spawner's defaults, which the guard
    works out on the manager, as the hub does), and Berth's own service names."""
    command = [
        "python3", "-m", "berth.guard", "--swarm",
        "--socket", layout.ENGINE_SOCKET,
        "--upstream", f"unix://{DOCKER_SOCKET}",
        "--prefix", layout.SPAWNER_PREFIX,
        "--network", cfg.network,
        "--volume-template", cfg.storage.volume_name_template,
    ]  # fmt: skip
    for image in served_images(spawner):
        command += ["--image", image]
    limits = cfg.limits
    for flag, value in (
        ("--max-memory", limits.memory),
        ("--max-cpus", limits.cpu),
        ("--max-pids", limits.pids),
    ):
        if value is not None:
            command += [flag, str(value)]  # str: a float as it round-trips, never rounded
    for name in reserved:
        command += ["--reserved-name", name]
    return command


def guard_container(
    cfg: BerthConfig,
    spawner: dict[str, Any],
    reserved: list[str],
    image: str,
    socket_gid: int,
    engine_volume: str,
) -> dict[str, Any]:
    """The guard's ContainerSpec: the manager's socket (its group only), the guard's volume."""
    return {
        "Image": image,
        "Hostname": layout.GUARD_CONTAINER,
        "Command": guard_command(cfg, spawner, reserved),
        "Groups": [str(socket_gid)],
        "Mounts": [
            {"Type": "bind", "Source": DOCKER_SOCKET, "Target": DOCKER_SOCKET},
            {"Type": "volume", "Source": engine_volume, "Target": layout.ENGINE_DIR},
        ],
        "ReadOnly": True,
    }
