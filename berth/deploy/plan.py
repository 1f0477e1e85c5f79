"""What `berth up` wants the service to be, as a pure function of the config and host facts.

The service is several containers (see layout.py), each planned here with its create
arguments, the files copied into it before it starts, and a fingerprint of everything it is
made from, stored as a label: the next `berth up` compares fingerprints container by container,
so it says "nothing changed" or restarts exactly the containers whose inputs changed. What a
container's plan is made of is in containerplan.py; the certificate and the ACME client's
container in tls_plan.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from berth import labels
from berth.config.render import SecretFile, render_config_py
from berth.config.runtime import HubRuntime
from berth.config.schema import BerthConfig
from berth.config.translate import Config, hub_secret_files, to_jupyterhub_config
from berth.deploy import layout, system_users
from berth.deploy.backup_plan import backup_volume_labels, plan_backup

# (`X as X`: re-exported for swarm_plan.py, which imports them from here.)
from berth.deploy.containerplan import HEALTH_INTERVAL_NS as HEALTH_INTERVAL_NS
from berth.deploy.containerplan import (
    SECURITY,
    ContainerFiles,
    ContainerPlan,
    HostFacts,
    VolumeLabels,
    finish,
    healthcheck,
    static_address,
)
from berth.deploy.containerplan import NetworkPlan as NetworkPlan
from berth.deploy.containerplan import fingerprint as fingerprint
from berth.deploy.firewall import spec_for_network
from berth.deploy.firewall_container import firewall_container_kwargs
from berth.deploy.network import bridge_name, network_addresses, network_create_kwargs
from berth.deploy.tls_plan import (
    acme_network_kwargs,
    acme_volume_name,
    plan_acme,
    self_signed_names,
)
from berth.deploy.tls_plan import tls_identity as tls_identity
from berth.engine_kind import PODMAN
from berth.errors import BerthError

# How often JupyterHub compares the proxy's routes with its own and adds the missing ones: a
# restarted proxy starts empty, and serves users again within this many seconds (`berth up`
# asks the hub to sync at once after it replaced the proxy).
ROUTE_CHECK_SECONDS = 15


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
    backup: ContainerPlan | None = None  # with backup.enabled

    @property
    def containers(self) -> tuple[ContainerPlan, ...]:
        """In the order of what each needs (berth.deploy.swap starts the guard, the firewall
        and the hub together, the others once the firewall's rules are in place): the hub
        needs the guard (it waits for its socket) and, like the proxy, the firewall's rules to
        reach anything on the network; the proxy needs what the hub writes; berth-acme
        replaces what the hub wrote; berth-backup reads the hub's data once it is there."""
        extra = tuple(c for c in (self.acme, self.backup) if c is not None)
        return (self.guard, self.firewall, self.hub, self.proxy, *extra)


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
            facts.engine_socket: {"bind": layout.HOST_DOCKER_SOCKET, "mode": "rw"},
            engine_volume: {"bind": layout.ENGINE_DIR, "mode": "rw"},
        },
        "group_add": [str(facts.socket_gid)],
        "read_only": True,
        "healthcheck": healthcheck("engine"),
        **SECURITY,
    }
    if cfg.backend == "system-users":
        system_users.add_to_guard(kwargs, cfg)
    return finish("guard", kwargs, {})


def plan_hub(
    cfg: BerthConfig, facts: HostFacts, net: NetworkPlan, volumes: tuple[str, str, str]
) -> tuple[ContainerPlan, str]:
    """JupyterHub: its data volume, the proxy volume to write, the guard's socket; no port."""
    data_volume, proxy_volume, engine_volume = volumes
    runtime = HubRuntime(
        # On Podman, names resolve through the gateway (aardvark-dns), which egress `none`
        # closes: user servers reach the hub by its fixed address there.
        hub_connect_host=net.hub_ip if facts.engine == PODMAN else layout.HUB_CONTAINER,
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
        **static_address(net, net.hub_ip, facts.engine),
        "healthcheck": healthcheck("hub"),
        **SECURITY,
    }
    if cfg.tls.acme:  # the self-signed certificate only stands in until berth-acme has one
        kwargs["environment"]["BERTH_TLS_ACME"] = "1"
    return finish("hub", kwargs, files), config_py


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
        **static_address(net, net.proxy_ip, facts.engine),
        "read_only": True,
        "healthcheck": healthcheck("proxy"),
        **SECURITY,
    }
    return finish("proxy", kwargs, {}, tls_identity(cfg, facts))


def plan_firewall(cfg: BerthConfig, facts: HostFacts, net: NetworkPlan) -> ContainerPlan:
    """The rules that isolate user servers (berth/deploy/firewall.py): host network, NET_ADMIN."""
    spec = spec_for_network(
        bridge_name(cfg.network),
        network_addresses(net.subnet),
        layout.HUB_API_PORT,
        egress=cfg.egress.mode,
        allow=tuple(cfg.egress.allow),
        resolvers=facts.resolvers if cfg.egress.mode != "none" else (),
        engine=facts.engine,
    )
    kwargs = firewall_container_kwargs(spec, facts.hub_image_id, name=layout.FIREWALL_CONTAINER)
    return finish("firewall", kwargs, {})


def backend_unavailable(backend: str) -> str:
    return (
        f"backend: {backend!r} is not available from `berth up` in this version; its spawner "
        "works from a JupyterHub you run yourself (docs/spawner.md). Use `backend: docker`."
    )


def plan_deployment(cfg: BerthConfig, facts: HostFacts) -> DeploymentPlan:
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
    volume_labels.update(backup_volume_labels(cfg))
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
        backup=plan_backup(cfg, facts),
    )


def config_changes(old: str, new: str) -> list[str]:
    """The `c.Section.key` settings that differ between two rendered configs."""

    def settings(text: str) -> dict[str, str]:
        pairs = (line.split(" = ", 1) for line in text.splitlines() if line.startswith("c."))
        return {key[2:]: value for key, value in pairs}

    before, after = settings(old), settings(new)
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
