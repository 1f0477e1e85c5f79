"""HubRuntime: the facts `berth up` supplies at run time, as seen from inside the hub container.

The translator combines these with berth.yaml; keeping them apart keeps the translation pure
and lets tests say exactly which paths and names the hub will use.
"""

from __future__ import annotations

from dataclasses import dataclass

from berth.hub_container import DATA_DIR, HUB_API_PORT, HUB_CONTAINER, SECRETS_DIR

_SECRETS = SECRETS_DIR


@dataclass(frozen=True)
class HubRuntime:
    #: Directory (in the hub container) of secrets the config layer hands over: OAuth client
    #: secret, service tokens, a database URL with a password. See ``hub_secret_files``.
    secrets_dir: str = _SECRETS
    #: Files `berth up` generates (mode 600) and keeps across restarts, so sessions survive.
    cookie_secret_file: str = f"{_SECRETS}/cookie_secret"
    #: Token shared by the hub and the proxy; None lets the hub make a new one each start.
    proxy_token_file: str | None = f"{_SECRETS}/proxy_token"
    #: Key for encrypting auth state: 32 random bytes, hex; None disables auth state.
    crypt_key_file: str | None = f"{_SECRETS}/crypt_key"
    #: The certificate the proxy serves: the operator's copy or the self-signed one.
    ssl_cert: str = f"{DATA_DIR}/tls/cert.pem"
    ssl_key: str = f"{DATA_DIR}/tls/key.pem"
    #: Name by which user containers reach the hub on the Docker network.
    hub_connect_host: str = HUB_CONTAINER
    hub_port: int = HUB_API_PORT
    #: Address and port the proxy binds; None: berth.yaml's listen.address / listen.port.
    #: In a container the default binds every interface; Docker publishes listen.address.
    bind_address: str | None = "0.0.0.0"
    bind_port: int | None = None
    #: Python of the hub container, used to start hub services such as the idle culler.
    python: str = "python3"

    def secret_path(self, name: str) -> str:
        return f"{self.secrets_dir}/{name}"
