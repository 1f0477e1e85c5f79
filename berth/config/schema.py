"""The berth.yaml schema: what an operator may write, its defaults, and what is refused.

Every model forbids unknown keys and every field carries a description; docs/configuration.md
documents every key path (tests/unit/test_config_docs.py keeps the two in step). The models
validate values only; reading the files they name is berth/config/resolve.py's job.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from berth.config.auth import AuthConfig
from berth.config.backup import BackupConfig
from berth.config.base import Section
from berth.config.dburl import check_db_url
from berth.config.egress import EgressConfig
from berth.config.fields import (
    DockerName,
    FieldProblem,
    ImageRef,
    IPAddress,
    MemorySize,
    check_image,
    describe,
)
from berth.config.servers import ServersConfig, servers_problem
from berth.config.services import IdleCullerConfig, ServiceConfig
from berth.config.snapshots import SnapshotsConfig
from berth.config.storage import StorageConfig
from berth.config.system_users import SystemUsersConfig, system_users_problem
from berth.config.tls import LETS_ENCRYPT as LETS_ENCRYPT
from berth.config.tls import LETS_ENCRYPT_STAGING as LETS_ENCRYPT_STAGING
from berth.config.tls import ACMEConfig as ACMEConfig
from berth.config.tls import TLSConfig as TLSConfig
from berth.config.users import UsersConfig
from berth.hub_container import DATA_DIR

# Where the hub container mounts its data volume (database, secrets, certificate).
HUB_DATA_DIR = DATA_DIR
DEFAULT_DB_URL = f"sqlite:///{HUB_DATA_DIR}/jupyterhub.sqlite"
DEFAULT_IMAGE = "berth/base-notebook:latest"


class ListenConfig(Section):
    address: IPAddress = Field(
        "0.0.0.0",
        description="Host IP address the HTTPS port is published on; `127.0.0.1` keeps the "
        "service local to the machine, `::` listens on IPv6 too.",
    )
    port: int = Field(8443, ge=1, le=65535, description="Host TCP port of the HTTPS service.")


class ImagesConfig(Section):
    default: ImageRef = Field(DEFAULT_IMAGE, description="Image started for every user.")
    allowed: list[str] | dict[str, str] = Field(
        [],
        description="Images users may choose from when they start a server: a list of "
        "images, or a mapping of display name to image. Empty: only `default`. The choice is "
        "checked by the hub, not just offered by the form.",
    )
    pull_policy: Literal["ifnotpresent", "always", "never"] = Field(
        "ifnotpresent",
        description="When the spawner pulls the image: only if missing, before every start, "
        "or never (images must be built or loaded beforehand).",
    )

    @field_validator("allowed", mode="before")
    @classmethod
    def _list_or_mapping(cls, value: Any) -> Any:
        # Checked here rather than by the union type, which would report a bad entry once per
        # union arm ("not a valid list", "not a valid dict") instead of once.
        if isinstance(value, list):
            return [_entry(str(i), check_image, v) for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {
                _entry("", _display_name, k): _entry(str(k), check_image, v)
                for k, v in value.items()
            }
        raise ValueError("expected a list of images or a mapping of display name to image")

    @model_validator(mode="after")
    def _default_allowed(self) -> ImagesConfig:
        choices = list(self.allowed.values()) if isinstance(self.allowed, dict) else self.allowed
        if choices and self.default not in choices:
            raise FieldProblem("default", f"{self.default!r} must be one of images.allowed")
        if len(set(choices)) != len(choices):
            raise FieldProblem("allowed", "lists the same image twice")
        return self


def _entry(key: str, check: Callable[[Any], str], value: Any) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise FieldProblem(key, str(exc)) from None


def _display_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"display name {describe(name)} must be a non-empty string")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        # The options form sends its choice back as text: a browser turns a line break into
        # CR LF and cannot send NUL, so such a choice could never be picked.
        raise ValueError(f"display name {name!r} contains a control character")
    return name


class LimitsConfig(Section):
    memory: MemorySize = Field(
        None,
        description="Memory limit of each user server: bytes, or a number with suffix K, M, "
        "G or T (powers of 1024), also written KiB, MiB, GiB, TiB; 0: no limit. Unset: 2G, "
        "or a quarter of the host's memory when that is less.",
    )
    cpu: float | None = Field(
        None,
        ge=0,
        # Docker refuses more than the host's CPUs anyway; the bound keeps the spawner's
        # nano_cpus (cpu * 1e9) far inside the engine's int64.
        le=1024,
        allow_inf_nan=False,
        description="CPUs each user server may use (e.g. 0.5, 2); 0: no limit. Unset: 1 on "
        "hosts with up to 4 CPUs, else 2.",
    )
    pids: int | None = Field(
        None,
        ge=0,
        description="Most processes and threads each user server may run at once; 0: no limit. "
        "Unset: 1024.",
    )

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: float | None) -> float | None:
        if value is not None and 0 < value < 0.01:
            raise ValueError("must be 0 (no limit) or at least 0.01")
        return value


class HubConfig(Section):
    db_url: SecretStr = Field(
        SecretStr(DEFAULT_DB_URL),
        description="Hub database: SQLite in the hub data volume (default), or "
        "`postgresql://user:password@host:5432/db`. Treated as a secret.",
    )
    data_volume: DockerName = Field(
        "berth-hub-data",
        description="Docker volume holding the hub's database, secrets and certificate.",
    )

    @field_validator("db_url")
    @classmethod
    def _db(cls, value: SecretStr) -> SecretStr:
        check_db_url(value.get_secret_value(), HUB_DATA_DIR)
        return value


# Networks that Docker itself owns (and 'default', its alias for 'bridge'): berth.yaml may not
# name them, because Berth's isolation needs a bridge network of its own (docs/deploy.md).
DOCKER_SHARED_NETWORKS = frozenset({"host", "bridge", "none", "default"})


# The spawner back ends `berth up` can wire the hub to (docs/spawner.md describes each).
Backend = Literal["docker", "swarm", "system-users"]


class BerthConfig(Section):
    """The whole of berth.yaml."""

    version: Literal[1] = Field(1, description="Format version of this file.")
    listen: ListenConfig = Field(ListenConfig(), description="Where the service listens.")
    tls: TLSConfig = Field(TLSConfig(), description="HTTPS certificate.")
    images: ImagesConfig = Field(ImagesConfig(), description="Notebook images.")
    storage: StorageConfig = Field(StorageConfig(), description="Users' persistent files.")
    servers: ServersConfig = Field(ServersConfig(), description="Several servers per user.")
    snapshots: SnapshotsConfig = Field(
        SnapshotsConfig(), description="Snapshots of users' servers (`berth snapshot`)."
    )
    limits: LimitsConfig = Field(LimitsConfig(), description="Resources per user server.")
    auth: AuthConfig = Field(AuthConfig(), description="How people log in.")
    users: UsersConfig = Field(UsersConfig(), description="Who may log in, and who is admin.")
    hub: HubConfig = Field(HubConfig(), description="The hub's own state.")
    idle_culler: IdleCullerConfig = Field(
        IdleCullerConfig(), description="Stopping servers nobody uses."
    )
    services: list[ServiceConfig] = Field(
        [], description="Hub services with API tokens, for scripts and automation."
    )
    network: DockerName = Field(
        "berth",
        description=(
            "Docker network of the service's own, joining the hub and the user containers; "
            "`berth up` creates it with its firewall. Docker's shared networks (host, bridge, "
            "none, default) are refused: they cannot isolate one user's server from another's."
        ),
    )
    egress: EgressConfig = Field(
        EgressConfig(), description="What user servers may reach beyond Berth's network."
    )
    backup: BackupConfig = Field(BackupConfig(), description="Scheduled backups.")
    backend: Backend = Field(
        "docker",
        description=(
            "Where user servers run: `docker` (containers on this engine), `swarm` (Swarm "
            "services across the nodes of a Swarm this engine manages) or `system-users` "
            "(containers running as the host account of the same name, with its home directory)."
        ),
    )
    system_users: SystemUsersConfig = Field(
        SystemUsersConfig(), description="Settings for `backend: system-users`."
    )

    @field_validator("network")
    @classmethod
    def _own_network(cls, value: str) -> str:
        if value.lower() in DOCKER_SHARED_NETWORKS:
            raise ValueError(
                f"{value!r} is one of Docker's shared networks, where Berth cannot keep user "
                "servers apart (on 'host' any port a user opens is open on the host itself): "
                "name a network of Berth's own, such as 'berth'"
            )
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> BerthConfig:
        names = [s.name for s in self.services]
        for name in names:
            if names.count(name) > 1:
                raise FieldProblem("services", f"service name {name!r} is used twice")
        if self.idle_culler.enabled and self.idle_culler.SERVICE_NAME in names:
            raise FieldProblem(
                "services", f"{self.idle_culler.SERVICE_NAME!r} is the idle culler's name"
            )
        if self.backup.enabled:
            self._check_backup()
        if problem := system_users_problem(self) or servers_problem(self):
            raise FieldProblem(*problem)
        oauth = self.auth.oauth
        if oauth is not None and not (oauth.has_allow_rule() or self.users.names_anyone()):
            raise FieldProblem(
                f"auth.{self.auth.type}",
                "nobody could log in: list users (users.allowed, users.admins, "
                "users.userlist_file), provider groups, or set allow_all: true",
            )
        return self

    def _check_backup(self) -> None:
        if not self.hub.db_url.get_secret_value().startswith("sqlite:"):
            raise FieldProblem(
                "backup.enabled",
                "scheduled backups need the SQLite hub database (with PostgreSQL, run "
                "`berth backup --all` from the host, or back it up with pg_dump)",
            )
        if self.backup.directory is None and self.backup.volume == self.hub.data_volume:
            raise FieldProblem("backup.volume", "must not be the hub's data volume")
