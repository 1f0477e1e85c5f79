"""What `berth up` wants on a Docker Swarm (berth.yaml `backend: swarm`), as a pure function.

The single-engine deployment (plan.py) is four containers on one engine. On a Swarm it is four
services, all pinned to the manager `berth up` runs against (their volumes are local volumes on
that node), plus the objects they use:

- ``berth-registry``: Debian's docker-registry (the berth/registry image), port 5000 published
  in host mode on the manager: Berth pushes the notebook images there and every node pulls them;
- ``berth-hub``: JupyterHub with the Swarm spawner, on the attachable overlay network the users'
  servers are on; its berth.yaml secrets are Swarm secrets, its jupyterhub_config.py a Swarm
  config; it reaches the manager's Engine API only through the engine guard;
- ``berth-engine-guard``: the only service with the manager's socket; serves the hub the Swarm
  spawner's calls on Berth's labelled services (swarm_guard.py, berth/guard/services.py);
- ``berth-proxy``: configurable-http-proxy, the listen port published in host mode.

Secrets and configs are immutable on a Swarm, so each is named after a hash of its content: a
changed secret is a new object, and the service that uses it changes with it. Every service
carries the fingerprint of everything it is made from (as plan.py's containers do), so the next
`berth up` replaces exactly the services whose inputs changed, and otherwise does nothing.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from berth import labels
from berth.config.render import render_config_py
from berth.config.runtime import HubRuntime
from berth.config.schema import BerthConfig
from berth.config.translate import hub_secret_files, to_jupyterhub_config
from berth.deploy import layout, swarm_guard
from berth.deploy.fence import FENCE_SERVICE
from berth.deploy.plan import (
    HEALTH_INTERVAL_NS,
    NetworkPlan,
    fingerprint,
    tls_identity,
    volume_names,
    with_deployment_settings,
)
from berth.deploy.swarm_fence import plan_fence, spawner_image_commands
from berth.errors import BerthError

REGISTRY_SERVICE = "berth-registry"
REGISTRY_PORT = 5000
REGISTRY_DIR = "/var/lib/docker-registry"
SWARM_SECRETS_DIR = "/run/secrets"  # where a Swarm mounts a secret named by a relative path
# The operator's certificate and key as Swarm secrets in the hub; hubinit copies them into the
# proxy volume (the single-engine `berth up` copies them in through the hub container instead).
TLS_SECRET_CERT, TLS_SECRET_KEY = "tls-cert.pem", "tls-key.pem"
LABEL_STACK = labels.LABEL_STACK
STACK_VALUE = "swarm"
DOCKER_SOCKET = "/var/run/docker.sock"
STOP_GRACE_NS = 15_000_000_000
RESTART = {"Condition": "any", "Delay": 5_000_000_000}
SERVICE_NAMES = {  # Berth's own services (no user's server may take these names)
    "registry": REGISTRY_SERVICE,
    "guard": layout.GUARD_CONTAINER,
    "hub": layout.HUB_CONTAINER,
    "proxy": layout.PROXY_CONTAINER,
}


@dataclass(frozen=True)
class SwarmFacts:
    """What `berth up` learns from the manager's engine before planning."""

    hub_image: str  # the tag the services run (a local image on the manager)
    hub_image_id: str
    registry_image: str
    registry_image_id: str
    manager_node_id: str  # every service is pinned here: its volumes are local to this node
    registry: str  # host:port of the registry as every node's engine names it
    socket_gid: int  # the group of the manager's Engine API socket
    tls_names: list[str]
    operator_tls: tuple[bytes, bytes] | None = None
    image_commands: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (image, its CMD), for the fence


@dataclass(frozen=True)
class SecretPlan:
    """One Swarm secret or config: its content-named object and where the hub sees it."""

    name: str
    data: bytes
    target: str  # File.Name: relative to /run/secrets (secrets), or absolute (configs)
    mode: int


@dataclass(frozen=True)
class ServicePlan:
    role: str  # registry, hub, proxy
    create_kwargs: dict[str, Any]  # for docker.APIClient.create_service (secret IDs filled later)
    fingerprint: str

    @property
    def name(self) -> str:
        return str(self.create_kwargs["name"])


@dataclass(frozen=True)
class SwarmPlan:
    network: dict[str, Any]  # create kwargs of the attachable overlay
    volumes: dict[str, dict[str, str]]  # local volumes on the manager: name -> labels
    secrets: tuple[SecretPlan, ...]
    configs: tuple[SecretPlan, ...]
    registry: ServicePlan
    guard: ServicePlan
    hub: ServicePlan
    proxy: ServicePlan
    pushes: tuple[tuple[str, str], ...]  # (local image, the registry's name for it)
    config_py: str
    fence: ServicePlan | None = None  # berth-fence on every node (swarm_fence.py)

    @property
    def services(self) -> tuple[ServicePlan, ...]:
        """In start order: the registry before anything pulls; the guard before the hub uses
        it; the proxy waits for the hub's files in their shared volume."""
        return (self.registry, self.guard, self.hub, self.proxy)


SWARM_LISTEN_ADDRESS = (
    "listen.address: a Swarm publishes a port in host mode on every address of the manager; "
    "with `backend: swarm` leave listen.address at 0.0.0.0 and limit access with the host's "
    "own firewall"
)


def registry_name(image: str, registry: str) -> str:
    """The name nodes pull ``image`` by: local names (no registry host) move to Berth's
    registry; an image that already names a registry is pulled from there."""
    first, _, rest = image.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"{registry}/{image}"


def _labels(role: str) -> dict[str, str]:
    return {LABEL_STACK: STACK_VALUE, layout.LABEL_ROLE: role}


def _content_name(kind: str, target: str, data: bytes) -> str:
    """Swarm secrets and configs cannot change: a new content is a new name."""
    # A Swarm name has at most 64 characters: 6 + 7 + 30 + 1 + 16.
    stem = PurePosixPath(target).name.replace("_", "-").split(".")[0][:30]
    return f"berth-{kind}-{stem}-{hashlib.sha256(data).hexdigest()[:16]}"


def hub_config(cfg: BerthConfig, registry: str) -> dict[str, dict[str, Any]]:
    """The hub's JupyterHub config: the single-engine one, with the Swarm spawner in place of the
    container spawner (same settings, its own section) and images named as nodes pull them."""
    runtime = HubRuntime(
        secrets_dir=SWARM_SECRETS_DIR,
        # hubinit's generated secrets stay in the data volume, as on one engine.
        cookie_secret_file=f"{layout.SECRETS_DIR}/cookie_secret",
        crypt_key_file=f"{layout.SECRETS_DIR}/crypt_key",
        hub_connect_host=layout.HUB_CONTAINER,
        bind_port=layout.PROXY_PORT,
        proxy_token_file=layout.PROXY_TOKEN_FILE,
        ssl_cert=layout.TLS_CERT,
        ssl_key=layout.TLS_KEY,
    )
    # Services are found by name on the overlay (dnsrr: a service's virtual IP needs IPVS).
    names = NetworkPlan(cfg.network, {}, "", layout.HUB_CONTAINER, layout.PROXY_CONTAINER)
    config = with_deployment_settings(to_jupyterhub_config(cfg, runtime), names)
    spawner = dict(config.pop("ContainerSpawner"))
    spawner["image"] = registry_name(spawner["image"], registry)
    allowed = spawner.get("allowed_images")
    if isinstance(allowed, dict):
        spawner["allowed_images"] = {k: registry_name(v, registry) for k, v in allowed.items()}
    elif allowed:
        spawner["allowed_images"] = [registry_name(v, registry) for v in allowed]
    spawner["docker_url"] = f"unix://{layout.ENGINE_SOCKET}"  # the engine guard
    config["SwarmSpawner"] = spawner
    config["JupyterHub"] = {**config["JupyterHub"], "spawner_class": "berth-swarm"}
    return {section: config[section] for section in sorted(config)}


def _health(check: str) -> dict[str, Any]:
    return {
        "Test": ["CMD", "python3", "-m", "berth.deploy.hubcheck", check],
        "Interval": HEALTH_INTERVAL_NS,
        "Timeout": 2 * HEALTH_INTERVAL_NS,
        "Retries": 3,
        "StartPeriod": 2 * HEALTH_INTERVAL_NS,
    }


def _volume(source: str, target: str, read_only: bool = False) -> dict[str, Any]:
    return {"Type": "volume", "Source": source, "Target": target, "ReadOnly": read_only}


def _service(
    role: str, container: dict[str, Any], facts: SwarmFacts, endpoint: dict[str, Any],
    networks: list[str], *extra: str,
) -> ServicePlan:  # fmt: skip
    kwargs: dict[str, Any] = {
        "name": SERVICE_NAMES[role],
        "mode": {"Replicated": {"Replicas": 1}},
        "endpoint_spec": endpoint,
        "task_template": {
            "ContainerSpec": {
                "CapabilityDrop": ["ALL"],
                "StopGracePeriod": STOP_GRACE_NS,
                **container,
            },
            "Placement": {"Constraints": [f"node.id=={facts.manager_node_id}"]},
            "RestartPolicy": RESTART,
            "Networks": [{"Target": name} for name in networks],
        },
    }
    print_ = fingerprint(kwargs, {}, *extra)
    kwargs["labels"] = {**_labels(role), layout.LABEL_FINGERPRINT: print_}
    return ServicePlan(role, kwargs, print_)


def _published(port: int, target: int) -> dict[str, Any]:
    # dnsrr and host mode: the ingress routing mesh needs IPVS, which is not always there.
    port_spec = {"Protocol": "tcp", "TargetPort": target, "PublishedPort": port}
    return {"Mode": "dnsrr", "Ports": [{**port_spec, "PublishMode": "host"}]}


def plan_guard(cfg: BerthConfig, facts: SwarmFacts, spawner: dict[str, Any]) -> ServicePlan:
    engine_volume = volume_names(cfg)[2]
    container = swarm_guard.guard_container(
        cfg, spawner, [*SERVICE_NAMES.values(), FENCE_SERVICE], facts.hub_image, facts.socket_gid,
        engine_volume,
    )  # fmt: skip
    container["HealthCheck"] = _health("engine")
    return _service("guard", container, facts, {"Mode": "dnsrr"}, [], facts.hub_image_id)


def plan_registry(cfg: BerthConfig, facts: SwarmFacts) -> ServicePlan:
    container = {
        "Image": facts.registry_image,
        "Hostname": REGISTRY_SERVICE,
        "Mounts": [_volume(registry_volume(cfg), REGISTRY_DIR)],
    }
    endpoint = _published(REGISTRY_PORT, REGISTRY_PORT)
    return _service("registry", container, facts, endpoint, [], facts.registry_image_id)


def registry_volume(cfg: BerthConfig) -> str:
    return f"{cfg.hub.data_volume}-registry"


SWARM_SCHEDULED_BACKUPS = (
    "backup.enabled: scheduled backups run in berth-backup, which `berth up` makes beside the "
    "hub on one engine, not on a Swarm (backend: swarm); run `berth backup --all --keep N` "
    "on a schedule from the host instead."
)


def plan_swarm(cfg: BerthConfig, facts: SwarmFacts) -> SwarmPlan:
    if cfg.backup.enabled:
        raise BerthError(SWARM_SCHEDULED_BACKUPS)
    if cfg.listen.address != "0.0.0.0":
        raise BerthError(SWARM_LISTEN_ADDRESS)
    data_volume, proxy_volume, engine_volume = volume_names(cfg)
    config = hub_config(cfg, facts.registry)
    config["SwarmSpawner"]["image_commands"] = spawner_image_commands(facts)
    config_py = render_config_py(config)
    configs = (
        SecretPlan(
            _content_name("config", layout.CONFIG_FILE, config_py.encode()),
            config_py.encode(), layout.CONFIG_FILE, 0o444,
        ),
    )  # fmt: skip
    secret_files: dict[str, bytes] = {
        PurePosixPath(path).name: value.get_secret_value().encode()
        for path, value in hub_secret_files(cfg, HubRuntime(secrets_dir=SWARM_SECRETS_DIR)).items()
    }
    env = {}
    names: list[str] = []
    if facts.operator_tls:
        secret_files[TLS_SECRET_CERT], secret_files[TLS_SECRET_KEY] = facts.operator_tls
        env["BERTH_TLS_FROM"] = SWARM_SECRETS_DIR
    else:
        names = list(dict.fromkeys([*cfg.tls.hostnames, *facts.tls_names]))
    env["BERTH_TLS_SELF_SIGNED"] = ",".join(names)
    secrets = tuple(
        SecretPlan(_content_name("secret", target, data), data, target, 0o400)
        for target, data in sorted(secret_files.items())
    )
    owner = {"UID": str(layout.HUB_UID), "GID": str(layout.HUB_GID)}
    hub = _service(
        "hub",
        {
            "Image": facts.hub_image,
            "Hostname": layout.HUB_CONTAINER,
            "Env": [f"{key}={value}" for key, value in sorted(env.items())],
            "Mounts": [
                _volume(data_volume, layout.DATA_DIR),
                _volume(proxy_volume, layout.PROXY_DIR),
                # The engine guard's socket, not the manager's: the Swarm spawner's calls only.
                _volume(engine_volume, layout.ENGINE_DIR, read_only=True),
            ],
            "Secrets": [
                {"SecretName": s.name, "File": {"Name": s.target, **owner, "Mode": s.mode}}
                for s in secrets
            ],
            "Configs": [
                {"ConfigName": c.name, "File": {"Name": c.target, **owner, "Mode": c.mode}}
                for c in configs
            ],
            "HealthCheck": _health("hub"),
        },
        facts,
        {"Mode": "dnsrr"},
        [cfg.network],
        facts.hub_image_id,
    )
    proxy_command = [
        "python3", "-m", "berth.deploy.proxyinit",
        # The API answers the proxy token only; on the overlay (no firewall there), see docs.
        "--api-ip", "0.0.0.0",
        "--hub-url", f"http://{layout.HUB_CONTAINER}:{layout.HUB_API_PORT}",
    ]  # fmt: skip
    proxy = _service(
        "proxy",
        {
            "Image": facts.hub_image,
            "Hostname": layout.PROXY_CONTAINER,
            "Command": proxy_command,
            "Env": [f"BERTH_PROXY_DIR={layout.PROXY_DIR}"],
            "Mounts": [_volume(proxy_volume, layout.PROXY_DIR, read_only=True)],
            "ReadOnly": True,
            "HealthCheck": _health("proxy"),
        },
        facts,
        _published(cfg.listen.port, layout.PROXY_PORT),
        [cfg.network],
        facts.hub_image_id,
        tls_identity(cfg, facts),  # type: ignore[arg-type]  # reads tls names, operator_tls
    )
    images = [cfg.images.default]
    allowed = cfg.images.allowed
    images += list(allowed.values() if isinstance(allowed, dict) else allowed)
    pushes = tuple(
        (image, registry_name(image, facts.registry))
        for image in dict.fromkeys(images)
        if registry_name(image, facts.registry) != image
    )
    # berth-fence runs the hub image on every node: it goes to the registry too.
    fence_image = registry_name(facts.hub_image, facts.registry)
    pushes += ((facts.hub_image, fence_image),) if fence_image != facts.hub_image else ()
    return SwarmPlan(
        network={
            "name": cfg.network,
            "driver": "overlay",
            "attachable": True,
            "scope": "swarm",
            "labels": _labels("network"),
        },
        volumes={
            data_volume: labels.managed("hub-data"),
            proxy_volume: {labels.LABEL_ROLE: "proxy-data"},
            registry_volume(cfg): {labels.LABEL_ROLE: "registry-data"},
            engine_volume: {labels.LABEL_ROLE: "engine-socket"},
        },
        secrets=secrets,
        configs=configs,
        registry=plan_registry(cfg, facts),
        guard=plan_guard(cfg, facts, config["SwarmSpawner"]),
        hub=hub,
        proxy=proxy,
        pushes=pushes,
        config_py=config_py,
        fence=plan_fence(cfg, facts, fence_image),
    )


def with_ids(plan: ServicePlan, ids: dict[str, str]) -> dict[str, Any]:
    """The service's create kwargs with each secret's and config's ID (known only once the
    objects exist) beside its name."""
    kwargs = copy.deepcopy(plan.create_kwargs)
    container = kwargs["task_template"]["ContainerSpec"]
    for ref in container.get("Secrets", []):
        ref["SecretID"] = ids[ref["SecretName"]]
    for ref in container.get("Configs", []):
        ref["ConfigID"] = ids[ref["ConfigName"]]
    return kwargs
