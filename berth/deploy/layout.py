"""Names and paths shared by the host side (`berth up`) and the hub container."""

from __future__ import annotations

import os
from pathlib import Path

HUB_CONTAINER = "berth-hub"
HUB_PORT = 8443  # the proxy's port inside the hub container; berth.yaml's listen port maps to it
HUB_API_PORT = 8081
CONFIG_DIR = "/srv/berth/config"
CONFIG_FILE = f"{CONFIG_DIR}/jupyterhub_config.py"
DATA_DIR = "/srv/berth/data"
SECRETS_DIR = f"{DATA_DIR}/secrets"
CLI_SERVICE = "berth-cli"
CLI_TOKEN_FILE = f"{SECRETS_DIR}/berth_cli_token"
# Secrets the hub container makes on first start (32 random bytes, hex, mode 600).
GENERATED_SECRETS = ("cookie_secret", "proxy_token", "crypt_key", "berth_cli_token")
SELF_SIGNED_MARKER = "self-signed-for"  # in data/tls: the names a self-signed cert was made for

LABEL_HUB = "berth.hub"
LABEL_FINGERPRINT = "berth.hub.fingerprint"


def data_dir() -> Path:
    """The data directory as the hub container sees it (tests point it elsewhere)."""
    return Path(os.environ.get("BERTH_HUB_DATA", DATA_DIR))
