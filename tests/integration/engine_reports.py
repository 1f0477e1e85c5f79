"""Reading inspect records the same way on Docker and on Podman's Docker-compatible API.

The two engines run the same container for the same request but describe some settings
differently (docs/podman.md):

- capabilities: Docker echoes the request (``CapDrop: ["ALL"]``, ``CapAdd: [...]``); Podman lists
  which of the engine's default capabilities are dropped and which are added beyond them;
- image names: Podman reports an image tagged through its compatible API as
  ``docker.io/library/<name>``, and one loaded from an archive as ``localhost/<name>``;
- label filters: Podman reads ``key=`` as "has the label", whatever its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The capabilities both engines give a container by default (Docker's list; Podman's compiled-in
#: default, which scripts/podman/containers.conf leaves alone).
DEFAULT_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)

IMPLICIT_REGISTRIES = ("docker.io/library/", "docker.io/", "localhost/")


def granted_capabilities(host_config: Mapping[str, Any]) -> set[str]:
    """The capabilities a container's HostConfig gives it (its bounding set), either engine."""
    dropped = {cap.removeprefix("CAP_") for cap in host_config.get("CapDrop") or []}
    added = {cap.removeprefix("CAP_") for cap in host_config.get("CapAdd") or []}
    kept = set() if "ALL" in dropped else set(DEFAULT_CAPABILITIES) - dropped
    return kept | added


def image_name(reported: str) -> str:
    """An image reference as it was asked for, without the registry an engine filled in."""
    for registry in IMPLICIT_REGISTRIES:
        if reported.startswith(registry):
            return reported.removeprefix(registry)
    return reported


def has_labels(found: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    """Exact label values (the engines' filters differ on empty values)."""
    return all((found or {}).get(key) == value for key, value in labels.items())


def effective_capabilities(status: str) -> int:
    """The CapEff bits of a process, from its /proc/<pid>/status text."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    raise ValueError("no CapEff line")
