"""Helpers for a Docker engine that runs inside a container of this machine's engine (the test
Swarm's nodes, the cold-path bench's empty engine)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

import docker.errors

__all__ = ["copy_image", "host_nameservers"]


def host_nameservers() -> list[str]:
    """This machine's resolvers, for an engine running inside a container. On a bridge network
    the container sees only Docker's 127.0.0.11, which that inner engine cannot hand on to its
    own containers, so it would give them 8.8.8.8 and 8.8.4.4: addresses outside this machine."""
    return re.findall(r"^nameserver\s+(\S+)", Path("/etc/resolv.conf").read_text(), re.M)


def copy_image(source: Any, target: Any, image: str) -> None:
    """``docker save | docker load`` between two engines, streamed through this process."""
    wanted = source.images.get(image)
    with contextlib.suppress(docker.errors.ImageNotFound):
        if target.images.get(image).id == wanted.id:
            return
    for record in target.api.load_image(source.api.get_image(image, chunk_size=1 << 20)) or []:
        if "error" in record:
            raise RuntimeError(f"load {image}: {record['error']}")
