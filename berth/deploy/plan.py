"""What `berth up` wants the service to be, as a pure function of the config and host facts.

The service is several containers (see layout.py), each planned here with its create
arguments, the files copied into it before it starts, and a fingerprint of everything it is
made from, stored as a label: the next `berth up` compares fingerprints container by container,
so it says "nothing changed" or restarts exactly the containers whose inputs changed.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from berth import labels
from berth.config.render import SecretFile, render_config_py
from berth.config.runtime import HubRuntime
from berth.config.schema import BerthConfig
from berth.config.translate import Config, hub_secret_files, to_jupyterhub_config
from berth.deploy import layout, system_users
from berth.deploy.firewall import firewall_container_kwargs, spec_for_network
from berth.deploy.layout import HUB_GID, HUB_UID
from berth.deploy.network import bridge_name, network_addresses, network_create_kwargs
from berth.errors import BerthError

# How often JupyterHub compares the proxy's routes with its own and adds the missing ones: a
# restarted proxy starts empty, and serves users again within this many seconds (`berth up`
# asks the hub to sync at once after it replaced the proxy).
ROUTE_CHECK_SECONDS = 15
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


@dataclass(frozen=True)
class DeploymentPlan:
    network: NetworkPlan
    volumes: VolumeLabels
    guard: ContainerPlan
    firewall: ContainerPlan
    hub: ContainerPlan
    proxy: ContainerPlan
    config_py: str
    acme: ContainerPlan | None = None  # with tls.acme
    acme_network: dict[str, Any] | None = None  # its network's create arguments

    @property
    def containers(self) -> tuple[ContainerPlan, ...]:
        """In start order: the hub needs the guard (and, like the proxy, the firewall's rules
        to reach anything on the network); the proxy needs what the hub writes; berth-acme
        replaces what the hub wrote."""
        acme = (self.acme,) if self.acme else ()
        return (self.guard, self.firewall, self.hub, self.proxy, *acme)


def plan_network(cfg: BerthConfig, facts: HostFacts) -> NetworkPlan:
    """The network (berth/deploy/network.py): a fixed bridge name for the firewall's rules,
    enable_icc=false, the hub's and proxy's fixed addresses outside the users' range."""
    addresses = network_addresses(facts.subnet)
    kwargs = network_create_kwargs(cfg.network, bridge_name(cfg.network), facts.subnet)
    return NetworkPlan(cfg.network, kwargs, addresses.subnet, addresses.hub, addresses.proxy)


def volume_names(cfg: BerthConfig) -> tuple[str, str, str]:
    """(data, proxy, engine): the proxy's and the guard's volumes are named after the data's."""
    data = cfg.hub.data_volume
    return data, f"{data}-proxy", f"{data}-engine"


def with_deployment_settings(config: Config, net: NetworkPlan) -> Config:
    """Add what this deployment needs beyond berth.yaml: the berth-cli service whose token
    `berth users …` uses, the proxy in its own container, and the spawner's prefix."""
    hub = dict(config.get("JupyterHub", {}))
    services = [*hub.get("services", [])]
    services.append({"name": layout.CLI_SERVICE, "api_token": SecretFile(layout.CLI_TOKEN_FILE)})
    roles = [*hub.get("load_roles", [])]
    # JupyterHub's own admin role: granting or revoking admin needs it (admin:users does not).
    roles.append({"name": "admin", "services": [layout.CLI_SERVICE]})
    hub["services"], hub["load_roles"] = services, roles
    hub["last_activity_interval"] = ROUTE_CHECK_SECONDS  # also re-adds missing routes
    proxy = {
        **config.get("ConfigurableHTTPProxy", {}),
        "should_start": False,
        "api_url": f"http://{net.proxy_ip}:{layout.PROXY_API_PORT}",
    }
    spawner = {**config.get("ContainerSpawner", {}), "prefix": layout.SPAWNER_PREFIX}
    return {
        **config,
        "JupyterHub": hub,
        "ConfigurableHTTPProxy": proxy,
        "ContainerSpawner": spawner,
    }


def _healthcheck(check: str) -> dict[str, Any]:
    return {
        "test": ["CMD", "python3", "-m", "berth.deploy.hubcheck", check],
        "interval": HEALTH_INTERVAL_NS,
        "timeout": 2 * HEALTH_INTERVAL_NS,
        "retries": 3,
        "start_period": 2 * HEALTH_INTERVAL_NS,
    }


def _static_address(net: NetworkPlan, address: str) -> dict[str, Any]:
    return {
        "network": net.name,
        "networking_config": {net.name: {"IPAMConfig": {"IPv4Address": address}}},
    }


def fingerprint(create_kwargs: CreateKwargs, files: ContainerFiles, *extra: str) -> str:
    """Everything a container is made from (create arguments, files, other inputs), hashed."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path][0] + b"\0")
    digest.update(json.dumps(create_kwargs, sort_keys=True, default=str).encode())
    for item in extra:
        digest.update(b"\0" + item.encode())
    return digest.hexdigest()[:32]


def _finish(role: str, kwargs: CreateKwargs, files: ContainerFiles, *extra: str) -> ContainerPlan:
    print_ = fingerprint(kwargs, files, *extra)
    kwargs["labels"] = {layout.LABEL_ROLE: role, layout.LABEL_FINGERPRINT: print_}
    return ContainerPlan(role, kwargs, files, print_)


def plan_guard(cfg: BerthConfig, facts: HostFacts, engine_volume: str) -> ContainerPlan:
    """The only container with the engine's socket: no network, and the socket's group only."""
    command = [
        "python3", "-m", "berth.guard",
        "--socket", layout.ENGINE_SOCKET,
        "--upstream", f"unix://{layout.HOST_DOCKER_SOCKET}",
        "--prefix", layout.SPAWNER_PREFIX,
        "--network", cfg.network,
    ]  # fmt: skip
    kwargs = {
        "image": facts.hub_image_id,
        "name": layout.GUARD_CONTAINER,
        "hostname": layout.GUARD_CONTAINER,
        "command": command,
        "detach": True,
        "network_mode": "none",
        "volumes": {
            layout.HOST_DOCKER_SOCKET: {"bind": layout.HOST_DOCKER_SOCKET, "mode": "rw"},
            engine_volume: {"bind": layout.ENGINE_DIR, "mode": "rw"},
        },
        "group_add": [str(facts.socket_gid)],
        "read_only": True,
        "healthcheck": _healthcheck("engine"),
        **SECURITY,
    }
    if cfg.backend == "system-users":
        system_users.add_to_guard(kwargs, cfg)
    return _finish("guard", kwargs, {})


def plan_hub(
    cfg: BerthConfig, facts: HostFacts, net: NetworkPlan, volumes: tuple[str, str, str]
) -> tuple[ContainerPlan, str]:
    """JupyterHub: its data volume, the proxy volume to write, the guard's socket; no port."""
    data_volume, proxy_volume, engine_volume = volumes
    runtime = HubRuntime(
        hub_connect_host=layout.HUB_CONTAINER,
        bind_port=layout.PROXY_PORT,
        proxy_token_file=layout.PROXY_TOKEN_FILE,
        ssl_cert=layout.TLS_CERT,
        ssl_key=layout.TLS_KEY,
    )
    config = with_deployment_settings(to_jupyterhub_config(cfg, runtime), net)
    if cfg.backend == "system-users":
        config = system_users.with_hub_settings(config)
    config_py = render_config_py(config)
    files: ContainerFiles = {layout.CONFIG_FILE: (config_py.encode(), 0o644)}
    for path, secret in hub_secret_files(cfg, runtime).items():
        files[path] = (secret.get_secret_value().encode(), 0o600)
    names: list[str] = []
    if facts.operator_tls:
        cert, key = facts.operator_tls
        files[layout.TLS_CERT] = (cert, 0o600)
        files[layout.TLS_KEY] = (key, 0o600)
    else:
        names = self_signed_names(cfg, facts)
    kwargs = {
        "image": facts.hub_image_id,
        "name": layout.HUB_CONTAINER,
        "hostname": layout.HUB_CONTAINER,
        "detach": True,
        "environment": {
            "BERTH_TLS_SELF_SIGNED": ",".join(names),
            # The engine guard, not the engine: only the calls the spawner makes, on Berth's
            # own labelled objects.
            "DOCKER_HOST": f"unix://{layout.ENGINE_SOCKET}",
        },
        "volumes": {
            data_volume: {"bind": layout.DATA_DIR, "mode": "rw"},
            proxy_volume: {"bind": layout.PROXY_DIR, "mode": "rw"},
            engine_volume: {"bind": layout.ENGINE_DIR, "mode": "ro"},
        },
        **_static_address(net, net.hub_ip),
        "healthcheck": _healthcheck("hub"),
        **SECURITY,
    }
    if cfg.tls.acme:  # the self-signed certificate only stands in until berth-acme has one
        kwargs["environment"]["BERTH_TLS_ACME"] = "1"
    return _finish("hub", kwargs, files), config_py


def self_signed_names(cfg: BerthConfig, facts: HostFacts) -> list[str]:
    acme = cfg.tls.acme.hostnames if cfg.tls.acme else []
    return list(dict.fromkeys([*acme, *cfg.tls.hostnames, *facts.tls_names]))


def tls_identity(cfg: BerthConfig, facts: HostFacts) -> str:
    """What the certificate the proxy serves is made from: a new one means a proxy restart.
    ACME's certificates change by themselves, and the proxy loads them without one."""
    if facts.operator_tls:
        return "operator:" + hashlib.sha256(b"\0".join(facts.operator_tls)).hexdigest()
    if cfg.tls.acme:
        return "acme"
    return "self-signed:" + ",".join(self_signed_names(cfg, facts))


def acme_network_name(cfg: BerthConfig) -> str:
    return f"{cfg.network}-acme"


def acme_volume_name(cfg: BerthConfig) -> str:
    return f"{cfg.hub.data_volume}-acme"


def acme_network_kwargs(cfg: BerthConfig) -> dict[str, Any]:
    """berth-acme's network: its own bridge, so it shares none with the hub, the proxy or a
    user server; it needs only the way out to the authority and its published HTTP port."""
    return {
        "name": acme_network_name(cfg),
        "driver": "bridge",
        "labels": {layout.LABEL_ROLE: "acme"},
    }


def plan_acme(cfg: BerthConfig, facts: HostFacts, proxy_volume: str) -> ContainerPlan | None:
    """The ACME client: the proxy volume (to write the certificate) and its own volume (the
    account key); no engine, no guard, not on the Berth network; the HTTP port published."""
    acme = cfg.tls.acme
    if acme is None:
        return None
    command = [
        "python3", "-m", "berth.acme.service",
        "--directory", acme.directory_url(),
        "--email", acme.email,
        "--http-port", str(layout.ACME_HTTP_PORT),
        "--challenge", acme.challenge_type(),
        "--https-port", str(cfg.listen.port),
        "--tls-dir", str(PurePosixPath(layout.TLS_CERT).parent),
        "--state", layout.ACME_DIR,
    ]  # fmt: skip
    for name in acme.hostnames:
        command += ["--name", name]
    environment = {}
    if facts.acme_directory_ca:  # a public CA certificate, not a secret
        environment["BERTH_ACME_DIRECTORY_CA"] = facts.acme_directory_ca.decode()
    kwargs = {
        "image": facts.hub_image_id,
        "name": layout.ACME_CONTAINER,
        "hostname": layout.ACME_CONTAINER,
        "command": command,
        "detach": True,
        "environment": environment,
        # Without http_port nothing is published (TLS-ALPN-01 goes through the proxy's port);
        # the HTTP server still answers inside, for the health check.
        "ports": (
            {f"{layout.ACME_HTTP_PORT}/tcp": (cfg.listen.address, acme.http_port)}
            if acme.http_port
            else {}
        ),
        "volumes": {
            proxy_volume: {"bind": layout.PROXY_DIR, "mode": "rw"},
            acme_volume_name(cfg): {"bind": layout.ACME_DIR, "mode": "rw"},
        },
        "network": acme_network_name(cfg),
        "read_only": True,
        "healthcheck": _healthcheck("acme"),
        **SECURITY,
    }
    return _finish("acme", kwargs, {})


def plan_proxy(
    cfg: BerthConfig, facts: HostFacts, net: NetworkPlan, proxy_volume: str
) -> ContainerPlan:
    """configurable-http-proxy: the published port, the proxy volume read-only, nothing else."""
    command = [
        "python3", "-m", "berth.deploy.proxyinit",
        "--api-ip", net.proxy_ip,
        "--hub-url", f"http://{net.hub_ip}:{layout.HUB_API_PORT}",
    ]  # fmt: skip
    kwargs = {
        "image": facts.hub_image_id,
        "name": layout.PROXY_CONTAINER,
        "hostname": layout.PROXY_CONTAINER,
        "command": command,
        "detach": True,
        "environment": {"BERTH_PROXY_DIR": layout.PROXY_DIR},
        "ports": {f"{layout.PROXY_PORT}/tcp": (cfg.listen.address, cfg.listen.port)},
        "volumes": {proxy_volume: {"bind": layout.PROXY_DIR, "mode": "ro"}},
        **_static_address(net, net.proxy_ip),
        "read_only": True,
        "healthcheck": _healthcheck("proxy"),
        **SECURITY,
    }
    return _finish("proxy", kwargs, {}, tls_identity(cfg, facts))


def plan_firewall(cfg: BerthConfig, facts: HostFacts, net: NetworkPlan) -> ContainerPlan:
    """The rules that isolate user servers (berth/deploy/firewall.py): host network, NET_ADMIN."""
    spec = spec_for_network(
        bridge_name(cfg.network),
        network_addresses(net.subnet),
        layout.HUB_API_PORT,
        egress=cfg.egress.mode,
        allow=tuple(cfg.egress.allow),
        resolvers=facts.resolvers if cfg.egress.mode != "none" else (),
    )
    kwargs = firewall_container_kwargs(spec, facts.hub_image_id, name=layout.FIREWALL_CONTAINER)
    return _finish("firewall", kwargs, {})


SCHEDULED_BACKUPS_UNAVAILABLE = (
    "backup.enabled: scheduled backups are not available in this version: they ran inside the "
    "hub, which now reaches the engine only through the engine guard, and a backup needs more "
    "than the guard allows (listing volumes, reading the hub's data volume). Until they run in "
    "a container of their own, run `berth backup --all --keep N` on a schedule from the host."
)


def backend_unavailable(backend: str) -> str:
    return (
        f"backend: {backend!r} is not available from `berth up` in this version; its spawner "
        "works from a JupyterHub you run yourself (docs/spawner.md). Use `backend: docker`."
    )


def plan_deployment(cfg: BerthConfig, facts: HostFacts) -> DeploymentPlan:
    if cfg.backup.enabled:
        raise BerthError(SCHEDULED_BACKUPS_UNAVAILABLE)
    if cfg.backend == "swarm":
        raise BerthError(backend_unavailable(cfg.backend))
    net = plan_network(cfg, facts)
    volumes = volume_names(cfg)
    data_volume, proxy_volume, engine_volume = volumes
    hub, config_py = plan_hub(cfg, facts, net, volumes)
    volume_labels = {
        data_volume: labels.managed(labels.ROLE_HUB_DATA),
        proxy_volume: {labels.LABEL_ROLE: labels.ROLE_PROXY_DATA},
        engine_volume: {labels.LABEL_ROLE: labels.ROLE_ENGINE_SOCKET},
    }
    if cfg.tls.acme:
        volume_labels[acme_volume_name(cfg)] = {labels.LABEL_ROLE: labels.ROLE_ACME_DATA}
    return DeploymentPlan(
        network=net,
        volumes=volume_labels,
        guard=plan_guard(cfg, facts, engine_volume),
        firewall=plan_firewall(cfg, facts, net),
        hub=hub,
        proxy=plan_proxy(cfg, facts, net, proxy_volume),
        config_py=config_py,
        acme=plan_acme(cfg, facts, proxy_volume),
        acme_network=acme_network_kwargs(cfg) if cfg.tls.acme else None,
    )


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


def config_changes(old: str, new: str) -> list[str]:
    """The `c.Section.key` settings that differ between two rendered configs."""

    def settings(text: str) -> dict[str, str]:
        pairs = (line.split(" = ", 1) for line in text.splitlines() if line.startswith("c."))
        return {key[2:]: value for key, value in pairs}

    before, after = settings(old), settings(new)
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
