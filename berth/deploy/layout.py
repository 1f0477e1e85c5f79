"""Names, paths and addresses shared by the host side (`berth up`) and the service's containers.

The service is four containers on the engine, each with only what its job needs:

- the engine guard (``berth-engine-guard``): the only one with the Docker socket; no network;
- the hub (``berth-hub``): JupyterHub and its data volume; reaches the engine through the guard;
- the proxy (``berth-proxy``): faces the internet; TLS and the proxy token, nothing else;
- the firewall (``berth-firewall``, when built in): the host network rules that isolate users;
- with ``tls.acme``, ``berth-acme``: certificates from an ACME authority; the HTTP port.
"""

from __future__ import annotations

import os
from pathlib import Path

HUB_CONTAINER = "berth-hub"
PROXY_CONTAINER = "berth-proxy"
GUARD_CONTAINER = "berth-engine-guard"
FIREWALL_CONTAINER = "berth-firewall"
ACME_CONTAINER = "berth-acme"  # only with tls.acme
PREVIOUS_SUFFIX = "-previous"  # a replaced container, kept stopped until its successor is healthy

HUB_UID, HUB_GID = 1000, 100  # the hub image's unprivileged user: every service container's
PROXY_PORT = 8443  # the proxy's port in its container; berth.yaml's listen port maps to it
PROXY_API_PORT = 8001  # the proxy's REST API: answers on the Berth network, to the proxy token only
HUB_API_PORT = 8081

CONFIG_DIR = "/srv/berth/config"
CONFIG_FILE = f"{CONFIG_DIR}/jupyterhub_config.py"
DATA_DIR = "/srv/berth/data"
SECRETS_DIR = f"{DATA_DIR}/secrets"
CLI_SERVICE = "berth-cli"
CLI_TOKEN_FILE = f"{SECRETS_DIR}/berth_cli_token"
# Secrets the hub container makes on first start in its data volume (32 random bytes, hex, 600).
GENERATED_SECRETS = ("cookie_secret", "crypt_key", "berth_cli_token")

# The proxy's volume: all the proxy may read. The hub writes it (token, self-signed certificate;
# berth up copies an operator's certificate in through the hub); the proxy mounts it read-only.
PROXY_DIR = "/srv/berth/proxy"
PROXY_TOKEN_FILE = f"{PROXY_DIR}/proxy_token"
TLS_CERT = f"{PROXY_DIR}/tls/cert.pem"
TLS_KEY = f"{PROXY_DIR}/tls/key.pem"
SELF_SIGNED_MARKER = "self-signed-for"  # beside the certificate: the names it was made for

# berth-acme's own volume (ACME account key, status.json); it writes the certificate and key
# into the proxy volume's tls/ and answers HTTP-01 on ACME_HTTP_PORT in its container.
ACME_DIR = "/srv/berth/acme"
ACME_STATUS_FILE = f"{ACME_DIR}/status.json"
ACME_HTTP_PORT = 8080

# The engine guard's socket, in a volume shared by the guard (rw) and the hub (ro).
ENGINE_DIR = "/run/berth-engine"
ENGINE_SOCKET = f"{ENGINE_DIR}/docker.sock"
HOST_DOCKER_SOCKET = "/var/run/docker.sock"
SPAWNER_PREFIX = "berth"  # ContainerSpawner.prefix: the guard lets the hub touch only these

# The Berth network's subnet: the hub and the proxy take the first addresses after the gateway,
# user containers the upper half. Outside the engine's default pools' usual first picks.
NETWORK_SUBNET = "172.30.0.0/16"

LABEL_ROLE = "berth.deploy.role"  # guard, hub, proxy or firewall
LABEL_FINGERPRINT = "berth.deploy.fingerprint"
LABEL_VOLUME_ROLE = "berth.role"


def data_dir() -> Path:
    """The data directory as the hub container sees it (tests point it elsewhere)."""
    return Path(os.environ.get("BERTH_HUB_DATA", DATA_DIR))


def proxy_dir() -> Path:
    """The proxy volume as the hub and the proxy see it (tests point it elsewhere)."""
    return Path(os.environ.get("BERTH_PROXY_DIR", PROXY_DIR))
