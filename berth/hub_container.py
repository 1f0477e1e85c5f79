"""Facts about the hub container that `berth up` runs: its name, user, port and paths.

The config translator (:mod:`berth.config.runtime`, :mod:`berth.config.schema`), the deployment
(:mod:`berth.deploy.layout`, :mod:`berth.deploy.plan`) and the code that runs inside the hub
container (:mod:`berth.deploy.hubinit`) all take them from here, so they cannot drift apart.
"""

from __future__ import annotations

#: The hub's container name, also its host name on the Berth network (user servers reach it so).
HUB_CONTAINER = "berth-hub"
#: The hub image's unprivileged user: every service container's.
HUB_UID, HUB_GID = 1000, 100
#: JupyterHub's own port (hub_port): its REST API and the user servers' OAuth callbacks.
HUB_API_PORT = 8081

#: Everything of Berth's inside the service's containers lives below this directory.
ROOT_DIR = "/srv/berth"
CONFIG_DIR = f"{ROOT_DIR}/config"
CONFIG_FILE = f"{CONFIG_DIR}/jupyterhub_config.py"
#: Where the hub mounts its data volume (database, secrets).
DATA_DIR = f"{ROOT_DIR}/data"
SECRETS_DIR = f"{DATA_DIR}/secrets"
CLI_TOKEN_FILE = f"{SECRETS_DIR}/berth_cli_token"
# Secrets the hub container makes on first start in its data volume (32 random bytes, hex, 600).
GENERATED_SECRETS = ("cookie_secret", "crypt_key", "berth_cli_token")

# The proxy's volume: all the proxy may read. The hub writes it (token, self-signed certificate;
# berth up copies an operator's certificate in through the hub); the proxy mounts it read-only.
PROXY_DIR = f"{ROOT_DIR}/proxy"
PROXY_TOKEN_FILE = f"{PROXY_DIR}/proxy_token"
TLS_CERT = f"{PROXY_DIR}/tls/cert.pem"
TLS_KEY = f"{PROXY_DIR}/tls/key.pem"
