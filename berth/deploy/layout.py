"""Names, paths and addresses shared by the host side (`berth up`) and the service's containers.

The service is four containers on the engine, each with only what its job needs:

- the engine guard (``berth-engine-guard``): the only one with the Docker socket; no network;
- the hub (``berth-hub``): JupyterHub and its data volume; reaches the engine through the guard;
- the proxy (``berth-proxy``): faces the internet; TLS and the proxy token, nothing else;
- the firewall (``berth-firewall``, when built in): the host network rules that isolate users.
"""

from __future__ import annotations

import os
from pathlib import Path

from berth import labels

# The hub container's name, user, port and paths live in berth.hub_container (the config layer
# needs them too); they are named here as well for the rest of berth.deploy.
from berth.hub_container import (  # noqa: F401 -- re-exported
    CLI_TOKEN_FILE,
    CONFIG_DIR,
    CONFIG_FILE,
    DATA_DIR,
    GENERATED_SECRETS,
    HUB_API_PORT,
    HUB_CONTAINER,
    HUB_GID,
    HUB_UID,
    PROXY_DIR,
    PROXY_TOKEN_FILE,
    ROOT_DIR,
    SECRETS_DIR,
    TLS_CERT,
    TLS_KEY,
)

PROXY_CONTAINER = "berth-proxy"
GUARD_CONTAINER = "berth-engine-guard"
FIREWALL_CONTAINER = "berth-firewall"
PREVIOUS_SUFFIX = "-previous"  # a replaced container, kept stopped until its successor is healthy

PROXY_PORT = 8443  # the proxy's port in its container; berth.yaml's listen port maps to it
PROXY_API_PORT = 8001  # the proxy's REST API: answers on the Berth network, to the proxy token only

CLI_SERVICE = "berth-cli"
SELF_SIGNED_MARKER = "self-signed-for"  # beside the certificate: the names it was made for

# The engine guard's socket, in a volume shared by the guard (rw) and the hub (ro).
ENGINE_DIR = "/run/berth-engine"
ENGINE_SOCKET = f"{ENGINE_DIR}/docker.sock"
HOST_DOCKER_SOCKET = "/var/run/docker.sock"
SPAWNER_PREFIX = "berth"  # ContainerSpawner.prefix: the guard lets the hub touch only these

# The Berth network's subnet: the hub and the proxy take the first addresses after the gateway,
# user containers the upper half. Outside the engine's default pools' usual first picks.
NETWORK_SUBNET = "172.30.0.0/16"

# The service containers' labels (berth.labels): which one, and the fingerprint of its inputs.
LABEL_ROLE = labels.LABEL_DEPLOY_ROLE  # guard, hub, proxy or firewall
LABEL_FINGERPRINT = labels.LABEL_FINGERPRINT


def data_dir() -> Path:
    """The data directory as the hub container sees it (tests point it elsewhere)."""
    return Path(os.environ.get("BERTH_HUB_DATA", DATA_DIR))


def proxy_dir() -> Path:
    """The proxy volume as the hub and the proxy see it (tests point it elsewhere)."""
    return Path(os.environ.get("BERTH_PROXY_DIR", PROXY_DIR))
