"""Names, paths and addresses shared by the host side (`berth up`) and the service's containers.

The service is four containers on the engine, each with only what its job needs:

- the engine guard (``berth-engine-guard``): the Docker socket, for the hub; no network;
- the hub (``berth-hub``): JupyterHub and its data volume; reaches the engine through the guard;
- the proxy (``berth-proxy``): faces the internet; TLS and the proxy token, nothing else;
- the firewall (``berth-firewall``, when built in): the host network rules that isolate users;
- with ``tls.acme``, ``berth-acme``: certificates from an ACME authority; the HTTP port;
- with ``backup.enabled``, ``berth-backup``: scheduled backups; the Docker socket, no network.
"""

from __future__ import annotations

import os
from pathlib import Path

from berth import labels

# The hub container's name, user, port and paths live in berth.hub_container (the config layer
# needs them too); they are named here as well for the rest of berth.deploy.
from berth.hub_container import (  # re-exported (`X as X`: what strict mypy accepts)
    CLI_TOKEN_FILE as CLI_TOKEN_FILE,
)
from berth.hub_container import (
    CONFIG_DIR as CONFIG_DIR,
)
from berth.hub_container import (
    CONFIG_FILE as CONFIG_FILE,
)
from berth.hub_container import (
    DATA_DIR as DATA_DIR,
)
from berth.hub_container import (
    GENERATED_SECRETS as GENERATED_SECRETS,
)
from berth.hub_container import (
    HUB_API_PORT as HUB_API_PORT,
)
from berth.hub_container import (
    HUB_CONTAINER as HUB_CONTAINER,
)
from berth.hub_container import (
    HUB_GID as HUB_GID,
)
from berth.hub_container import (
    HUB_UID as HUB_UID,
)
from berth.hub_container import (
    PROXY_DIR as PROXY_DIR,
)
from berth.hub_container import (
    PROXY_TOKEN_FILE as PROXY_TOKEN_FILE,
)
from berth.hub_container import (
    ROOT_DIR as ROOT_DIR,
)
from berth.hub_container import (
    SECRETS_DIR as SECRETS_DIR,
)
from berth.hub_container import (
    TLS_CERT as TLS_CERT,
)
from berth.hub_container import (
    TLS_KEY as TLS_KEY,
)

PROXY_CONTAINER = "berth-proxy"
GUARD_CONTAINER = "berth-engine-guard"
FIREWALL_CONTAINER = "berth-firewall"
ACME_CONTAINER = "berth-acme"  # only with tls.acme
BACKUP_CONTAINER = "berth-backup"  # only with backup.enabled
PREVIOUS_SUFFIX = "-previous"  # a replaced container, kept stopped until its successor is healthy

PROXY_PORT = 8443  # the proxy's port in its container; berth.yaml's listen port maps to it
PROXY_API_PORT = 8001  # the proxy's REST API: answers on the Berth network, to the proxy token only

CLI_SERVICE = "berth-cli"
SELF_SIGNED_MARKER = "self-signed-for"  # beside the certificate: the names it was made for

# berth-acme's own volume (ACME account key, status.json); it writes the certificate and key
# into the proxy volume's tls/ and answers HTTP-01 on ACME_HTTP_PORT in its container.
ACME_DIR = "/srv/berth/acme"
ACME_STATUS_FILE = f"{ACME_DIR}/status.json"
ACME_HTTP_PORT = 8080
# In the proxy volume: a copy of status.json for the hub, which logs failures from it
# (berth/deploy/acme_log.py), and tls/alpn/, the TLS-ALPN-01 certificates the proxy serves.
ACME_STATUS_FOR_HUB = "acme-status.json"
ACME_ALPN_DIR = "alpn"

# berth-backup's destination (the backup volume or host directory), and its state file there:
# the last success and the last failure, which `berth status` reads (berth/deploy/scheduled.py).
BACKUP_DIR = "/srv/berth/backups"
BACKUP_STATE_FILE = f"{BACKUP_DIR}/.berth-backup-state.json"

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
