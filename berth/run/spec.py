"""Pure decisions of `berth run`: who the notebook runs as and the container's create arguments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from berth import names
from berth.config.fields import parse_memory
from berth.errors import BerthError
from berth.labels import LABEL_RUN, LABEL_RUN_MOUNT

WORK_DIR = "/home/jovyan/work"
CONTAINER_PORT = 8888
DEFAULT_UID, USERS_GID = 1000, 100
# Shorter than Docker's own limit: the name is the default host name in the container, and a
# host name label has at most 63 characters.
MAX_RUN_NAME_LENGTH = 63


@dataclass(frozen=True)
class RunIdentity:
    """The uid:gid the notebook runs as, chosen so files in the mount belong to its owner."""

    uid: int
    gid: int
    note: str | None = None  # said to the person when the choice is not the obvious one


def choose_identity(dir_uid: int, dir_gid: int, caller_uid: int) -> RunIdentity:
    """Run as the mounted directory's owner; never as root.

    A root-owned directory (typical when berth runs as root) would make the notebook root, so
    it runs as jovyan instead and says that it cannot write there.
    """
    if dir_uid != 0:
        return RunIdentity(dir_uid, dir_gid)
    if caller_uid != 0:
        return RunIdentity(caller_uid, dir_gid)
    return RunIdentity(
        DEFAULT_UID,
        USERS_GID,
        note="the mounted directory is owned by root; the notebook runs unprivileged as uid "
        f"{DEFAULT_UID} and cannot write there unless the directory allows it "
        f"(chown it, or mount a directory you own)",
    )


def validate_name(name: str) -> str:
    """A container name Docker accepts (:func:`berth.names.check_docker_name`, the one check),
    of at most 63 characters."""
    try:
        names.check_docker_name(name)
        if len(name) > MAX_RUN_NAME_LENGTH:
            raise ValueError
    except ValueError:
        raise BerthError(
            f"invalid container name {name!r}: use letters, digits, '_', '.' or '-' "
            f"(starting with a letter or digit, 2 to {MAX_RUN_NAME_LENGTH} characters)"
        ) from None
    return name


def validate_memory(text: str) -> int:
    """``--memory`` as bytes; what berth.yaml's limits.memory accepts (2g, 512M, 1.5G, ...)."""
    try:
        return parse_memory(text.strip()) or 0
    except ValueError as exc:
        raise BerthError(f"--memory {text!r}: {exc}") from None


def validate_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise BerthError(f"--port must be between 1 and 65535, not {port}")
    return port


@dataclass(frozen=True)
class RunSpec:
    image: str
    name: str
    port: int
    mount: Path
    identity: RunIdentity
    https: bool = False
    public: bool = False
    memory: int | str | None = None  # bytes, or what docker-py's parse_bytes reads


class ServerInfo(TypedDict, total=False):
    """One entry of `jupyter server list --jsonlist` (the keys Berth reads of it)."""

    secure: bool
    base_url: str
    token: str


def create_kwargs(spec: RunSpec) -> dict[str, Any]:
    """Arguments for `containers.create`: unprivileged, no capabilities, loopback by default."""
    environment = {"DOCKER_STACKS_JUPYTER_CMD": "lab"}
    if spec.https:
        environment["GEN_CERT"] = "yes"
    kwargs: dict[str, Any] = {
        "image": spec.image,
        "name": spec.name,
        "detach": True,
        # An arbitrary uid works in the images (start.sh registers it); the users group gives it
        # the group-writable home and Python environment.
        "user": f"{spec.identity.uid}:{spec.identity.gid}",
        "group_add": [str(USERS_GID)],
        "environment": environment,
        "ports": {f"{CONTAINER_PORT}/tcp": ("0.0.0.0" if spec.public else "127.0.0.1", spec.port)},
        "volumes": {str(spec.mount): {"bind": WORK_DIR, "mode": "rw"}},
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "labels": {LABEL_RUN: "1", LABEL_RUN_MOUNT: str(spec.mount)},
    }
    if spec.memory:
        kwargs["mem_limit"] = spec.memory
    return kwargs


def browser_url(server: ServerInfo, host: str, port: int) -> str:
    """The URL to open on the host, from one entry of `jupyter server list --jsonlist`."""
    scheme = "https" if server.get("secure") else "http"
    base = server.get("base_url") or "/"
    token = server.get("token") or ""
    query = f"?token={token}" if token else ""
    return f"{scheme}://{host}:{port}{base}lab{query}"
