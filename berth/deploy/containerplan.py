"""What every container of `berth up`'s plan is made of: the host facts planning starts from,
the network, one container's plan (create arguments, files, fingerprint) and the helpers that
build one (healthcheck, static address, fingerprint label, the files' tar)."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import tarfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from berth.deploy import layout
from berth.deploy.layout import HUB_GID, HUB_UID
from berth.engine_kind import DOCKER, PODMAN

HEALTH_INTERVAL_NS = 5_000_000_000
# Keyword arguments of the docker SDK's `client.containers.create` (networks: `.networks.create`).
CreateKwargs = dict[str, Any]
# Path in a container -> (content, mode): the files copied into it before it starts.
ContainerFiles = dict[str, tuple[bytes, int]]
# Volume name -> its labels.
VolumeLabels = dict[str, dict[str, str]]

SECURITY = {
    "restart_policy": {"Name": "unless-stopped"},
    "security_opt": ["no-new-privileges"],
    "cap_drop": ["ALL"],
}


@dataclass(frozen=True)
class HostFacts:
    """What berth up learns from the host and engine before planning."""

    hub_image_id: str
    socket_gid: int
    tls_names: list[str]  # names and addresses a self-signed certificate must cover
    operator_tls: tuple[bytes, bytes] | None = None  # (cert, key) read from tls.cert/tls.key
    acme_directory_ca: bytes | None = None  # read from tls.acme.directory_ca
    subnet: str = layout.NETWORK_SUBNET  # the existing network's, or one the engine allocated
    resolvers: tuple[str, ...] = ()  # the engine's DNS servers (hostfacts.dns_resolvers)
    engine: str = "docker"  # or "podman" (berth.engine_kind): the firewall differs there
    engine_socket: str = "/var/run/docker.sock"  # the engine's socket on the host


@dataclass(frozen=True)
class NetworkPlan:
    """The Berth network: an explicit subnet, so the hub and proxy keep fixed addresses (the
    firewall's rules name them) outside the range user containers get addresses from."""

    name: str
    create_kwargs: CreateKwargs
    subnet: str
    hub_ip: str
    proxy_ip: str


@dataclass(frozen=True)
class ContainerPlan:
    role: str  # guard, hub, proxy, firewall
    create_kwargs: CreateKwargs
    files: ContainerFiles
    fingerprint: str

    @property
    def name(self) -> str:
        name: str = self.create_kwargs["name"]
        return name


def healthcheck(check: str) -> dict[str, Any]:
    return {
        "test": ["CMD", "python3", "-m", "berth.deploy.hubcheck", check],
        "interval": HEALTH_INTERVAL_NS,
        "timeout": 2 * HEALTH_INTERVAL_NS,
        "retries": 3,
        "start_period": 2 * HEALTH_INTERVAL_NS,
    }


def stable_mac(address: str) -> str:
    """The MAC address of the container at IPv4 `address`: 02:42 and the address's four bytes,
    the one Docker derives for every container."""
    return "02:42:" + ":".join(f"{byte:02x}" for byte in ipaddress.IPv4Address(address).packed)


def endpoint_config(address: str, engine: str = DOCKER) -> dict[str, Any]:
    """The network endpoint of a container at a fixed address.

    On Podman it also fixes the MAC address (`stable_mac`): netavark draws a new random one
    for every container, so the hub or proxy that `berth up` puts in place of its predecessor,
    at the same address, had a new MAC while the host's neighbour table (ARP) still held the old
    one (REACHABLE for up to 45 s after its last use, then a few more seconds of probes): the
    host sent everything for that address to a MAC that no longer existed, so the published
    port took no connection for most of a minute after `berth up` (docs/podman.md). Docker
    derives the MAC from the address, so there a replacement keeps it anyway."""
    endpoint: dict[str, Any] = {"IPAMConfig": {"IPv4Address": address}}
    if engine == PODMAN:
        endpoint["MacAddress"] = stable_mac(address)
    return endpoint


def static_address(net: NetworkPlan, address: str, engine: str = DOCKER) -> dict[str, Any]:
    return {"network": net.name, "networking_config": {net.name: endpoint_config(address, engine)}}


def fingerprint(create_kwargs: CreateKwargs, files: ContainerFiles, *extra: str) -> str:
    """Everything a container is made from (create arguments, files, other inputs), hashed."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path][0] + b"\0")
    digest.update(json.dumps(create_kwargs, sort_keys=True, default=str).encode())
    for item in extra:
        digest.update(b"\0" + item.encode())
    return digest.hexdigest()[:32]


def finish(role: str, kwargs: CreateKwargs, files: ContainerFiles, *extra: str) -> ContainerPlan:
    print_ = fingerprint(kwargs, files, *extra)
    kwargs["labels"] = {layout.LABEL_ROLE: role, layout.LABEL_FINGERPRINT: print_}
    return ContainerPlan(role, kwargs, files, print_)


def files_tar(files: ContainerFiles) -> bytes:
    """One tar (rooted at /) of the plan's files, owned by the hub user, with their modes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories: set[str] = set()
        for path in sorted(files):
            for parent in reversed(PurePosixPath(path).parents[:-1]):
                if str(parent) not in directories and str(parent).startswith(f"{layout.ROOT_DIR}/"):
                    directories.add(str(parent))
                    info = tarfile.TarInfo(str(parent).lstrip("/"))
                    info.type, info.mode, info.uid, info.gid = (
                        tarfile.DIRTYPE,
                        0o700,
                        HUB_UID,
                        HUB_GID,
                    )
                    tar.addfile(info)
            data, mode = files[path]
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid = len(data), mode, HUB_UID, HUB_GID
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
