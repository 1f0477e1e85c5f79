"""`berth up` against the engine: network, volumes, the service's containers, first admin.

The handle on the running hub is :mod:`berth.deploy.hub`; replacing containers without
downtime is :mod:`berth.deploy.swap`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.networks import Network

from berth import ports, tls
from berth.config.schema import BerthConfig
from berth.deploy import hostfacts, layout, listed, pgio
from berth.deploy.containerplan import ContainerPlan, HostFacts, NetworkPlan, VolumeLabels
from berth.deploy.hub import SERVICE_CONTAINERS, current, current_hub, exec_accounts, read_file
from berth.deploy.network import (
    allocate_subnet,
    bridge_name,
    network_problems,
    podman_network_problems,
)
from berth.deploy.plan import DeploymentPlan, config_changes, plan_deployment
from berth.deploy.swap import Swap, replace, up_to_date, wait_ready
from berth.engine_kind import DOCKER, PODMAN, engine_kind, podman_network
from berth.errors import BerthError

DEFAULT_ADMIN = "admin"


@dataclass
class UpResult:
    url: str
    changed: bool
    changes: list[str] = field(default_factory=list)
    accounts: listed.ListedAccounts = field(default_factory=listed.ListedAccounts)


def with_default_admin(cfg: BerthConfig) -> BerthConfig:
    """With local accounts and no admin named, the service gets one called `admin`."""
    if cfg.auth.type != "native" or cfg.users.admins:
        return cfg
    users = cfg.users.model_copy(update={"admins": [DEFAULT_ADMIN]})
    return cfg.model_copy(update={"users": users})


def gather_facts(client: docker.DockerClient, cfg: BerthConfig, hub_image: str) -> HostFacts:
    engine = engine_kind(client)
    if engine == PODMAN:
        hostfacts.require_bridge_filtering()
    socket = hostfacts.engine_socket(os.environ.get("DOCKER_HOST"))
    operator = None
    if cfg.tls.cert and cfg.tls.key:
        operator = hostfacts.read_operator_tls(cfg.tls.cert, cfg.tls.key)
        tls.check_pair(*operator, source=f"{cfg.tls.cert} / {cfg.tls.key}")
    directory_ca = None
    if cfg.tls.acme and cfg.tls.acme.directory_ca:
        directory_ca = read_ca(cfg.tls.acme.directory_ca)
    return HostFacts(
        acme_directory_ca=directory_ca,
        subnet=_subnet(client, cfg.network, engine),
        hub_image_id=str(client.images.get(hub_image).id),  # an Image from the engine has one
        socket_gid=hostfacts.socket_gid(socket),
        engine=engine,
        engine_socket=str(socket),
        tls_names=hostfacts.host_names(cfg.listen.address),
        operator_tls=operator,
        resolvers=hostfacts.dns_resolvers(),
    )


def read_ca(path: Path) -> bytes:
    """tls.acme.directory_ca: PEM certificates only (a key in it would end up in the
    container's environment)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BerthError(f"cannot read tls.acme.directory_ca {path}: {exc.strerror}") from exc
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise BerthError(f"tls.acme.directory_ca {path}: not PEM certificates") from exc
    if b"PRIVATE KEY" in data or not certs:
        raise BerthError(f"tls.acme.directory_ca {path}: give only CA certificates")
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certs)


def ensure_acme_network(client: docker.DockerClient, kwargs: dict[str, Any]) -> None:
    if _find_network(client, kwargs["name"]) is None:
        client.networks.create(**kwargs)


def remove_unplanned(
    client: docker.DockerClient, role: str, base: str, setting: str, say: Callable[[str], None]
) -> None:
    """tls.acme or backup.enabled was removed from berth.yaml: its container goes (its volume
    stays). Only one `berth up` made (its role label): a user named "backup" has a server
    called berth-backup under the default name template."""
    for name in (base, base + layout.PREVIOUS_SUFFIX):
        found = current(client, name)
        if found is not None and found.labels.get(layout.LABEL_ROLE) == role:
            say(f"removing {name} (no {setting} in berth.yaml)")
            found.remove(force=True)


def _find_network(client: docker.DockerClient, name: str) -> Network | None:
    # The engine's name filter matches substrings: compare names exactly.
    found = [n for n in client.networks.list(names=[name]) if n.name == name]
    return client.networks.get(str(found[0].id)) if found else None


def unfit(client: docker.DockerClient, network: Network, bridge: str, engine: str) -> list[str]:
    """What keeps `network` from isolating user servers, as its engine made it (Podman's
    compatible inspect leaves out what matters: its own record is read there)."""
    if engine == PODMAN:
        return podman_network_problems(podman_network(client, str(network.name)), bridge)
    return network_problems(network.attrs, bridge)


def _subnet(client: docker.DockerClient, name: str, engine: str = DOCKER) -> str:
    """The existing network's subnet when it is fit to keep, else one the engine allocates."""
    network = _find_network(client, name)
    if network is not None and not unfit(client, network, bridge_name(name), engine):
        subnet: str = network.attrs["IPAM"]["Config"][0]["Subnet"]
        return subnet
    return allocate_subnet(client, f"{name}-subnet-probe")


def ensure_network(client: docker.DockerClient, plan: NetworkPlan, engine: str = DOCKER) -> None:
    """Create the network as planned; one made differently (an older Berth's, without a fixed
    subnet) is made again while only the service's own containers are on it."""
    network = _find_network(client, plan.name)
    if network is not None:
        configs = (network.attrs.get("IPAM") or {}).get("Config") or [{}]
        bridge = plan.create_kwargs["options"]["com.docker.network.bridge.name"]
        fit = not unfit(client, network, bridge, engine)
        if fit and configs[0].get("Subnet") == plan.subnet:
            return
        attached = network.attrs.get("Containers") or {}
        names = {info.get("Name") for info in attached.values()}
        others = sorted(n for n in names if n not in _all_service_names())
        if others:
            raise BerthError(
                f"the network {plan.name} was made by an older Berth and must be made again, "
                f"but {len(others)} container(s) are on it: {', '.join(others[:5])}",
                hint="stop the user servers with `berth down` (volumes are kept), then `berth up`",
            )
        for container_id in attached:
            with contextlib.suppress(NotFound, APIError):
                network.disconnect(container_id, force=True)
        network.remove()
    try:
        created = client.networks.create(**plan.create_kwargs)
    except APIError as exc:
        raise BerthError(
            f"the engine refused to create the network {plan.name}: {exc.explanation or exc}",
            hint=f"another network may use the subnet {plan.subnet} (docker network ls)",
        ) from exc
    podman_record = podman_network(client, plan.name) if engine == PODMAN else None
    check_network_made(created, plan, podman_record)


def check_network_made(
    network: Network, plan: NetworkPlan, podman_record: dict[str, Any] | None = None
) -> None:
    """Refuse an engine that accepted the network but not its isolation settings.

    An engine may take the request and leave out what isolates user servers. Podman's
    compatible API takes `enable_icc=false` only as "networks apart" and reports neither the
    bridge name nor the address range back (docs/podman.md): there its own record
    (`podman_record`) must show both, and the firewall drops what `enable_icc` would.
    Nothing runs on a refused network yet, so it is removed again.
    """
    network.reload()
    bridge = plan.create_kwargs["options"]["com.docker.network.bridge.name"]
    if podman_record is not None:
        problems = podman_network_problems(podman_record, bridge)
    else:
        problems = network_problems(network.attrs, bridge)
    if problems:
        with contextlib.suppress(NotFound, APIError):
            network.remove()
        raise BerthError(
            f"the engine made the network {plan.name} without the isolation Berth asked for: "
            + "; ".join(problems),
            hint="`berth up` needs an engine that makes the network as asked: the Docker "
            "Engine, or Podman with netavark (docs/podman.md)",
        )


def _all_service_names() -> set[str]:
    return {n + suffix for n in SERVICE_CONTAINERS for suffix in ("", layout.PREVIOUS_SUFFIX)}


def ensure_volumes(client: docker.DockerClient, volumes: VolumeLabels) -> None:
    for name, labels in volumes.items():
        try:
            client.volumes.get(name)
        except NotFound:
            client.volumes.create(name, labels=labels)


def apply(
    client: docker.DockerClient,
    cfg: BerthConfig,
    hub_image: str,
    say: Callable[[str], None],
) -> UpResult:
    """Make the running service match `cfg`; restart only the containers whose inputs changed."""
    cfg = with_default_admin(cfg)
    facts = gather_facts(client, cfg, hub_image)
    plan = plan_deployment(cfg, facts)
    existing = {c.role: current(client, c.name) for c in plan.containers}
    _check_port(cfg, [existing.get("proxy"), existing.get("hub")])
    if cfg.tls.acme and cfg.tls.acme.http_port:
        _check_port(cfg, [existing.get("acme")], cfg.tls.acme.http_port, "tls.acme.http_port")
    ensure_network(client, plan.network, facts.engine)
    ensure_volumes(client, plan.volumes)
    if plan.acme_network:
        ensure_acme_network(client, plan.acme_network)
    else:
        remove_unplanned(client, "acme", layout.ACME_CONTAINER, "tls.acme", say)
    if plan.backup is None:
        remove_unplanned(client, "backup", layout.BACKUP_CONTAINER, "backup.enabled", say)
    url = public_url(cfg, facts)
    stale = [c for c in plan.containers if not up_to_date(existing[c.role], c)]
    if not stale:
        result = UpResult(url, changed=False)
    else:
        changes = [line for c in stale for line in _describe(c, existing[c.role], plan)]
        names = ", ".join(c.name for c in stale)
        if plan.hub in stale:  # an unusable database is refused before the hub is touched
            pgio.check_before_replacing_hub(
                client, facts.hub_image_id, cfg.hub.db_url.get_secret_value(), cfg.network
            )
        say(f"starting {names}" if not any(existing.values()) else f"restarting {names} "
            "(user servers keep running)")  # fmt: skip
        replace(client, plan, [Swap(c, existing[c.role]) for c in stale])
        result = UpResult(url, changed=True, changes=changes)
    # Every run, not only after a restart: an account missing after a run cut short is made
    # now (until then the hub refuses sign-ups of listed names, so nobody can take it).
    if cfg.auth.type == "native":
        hub = current_hub(client)
        if hub is not None and not stale:  # running, but maybe still starting (a restart)
            wait_ready(Swap(plan.hub, None, hub), plan)
        result.accounts = listed.ensure_listed(lambda a: exec_accounts(client, a), cfg.users)
    return result


def _describe(plan: ContainerPlan, existing: Container | None, whole: DeploymentPlan) -> list[str]:
    if existing is None:
        return [f"{plan.name} was missing"] if plan.role != "guard" else ["the engine guard"]
    if existing.labels.get(layout.LABEL_FINGERPRINT) == plan.fingerprint:
        return [f"the {plan.role} was not running"]
    if plan.role == "hub":
        changes = config_changes(read_file(existing, layout.CONFIG_FILE), whole.config_py)
        return changes or ["the hub image, certificate, volumes or a secret file"]
    if plan.role == "proxy":
        return ["the proxy (image, published address or port, certificate)"]
    if plan.role == "acme":
        return ["berth-acme (image, tls.acme settings)"]
    if plan.role == "backup":
        return ["berth-backup (image, backup settings)"]
    return [f"the {plan.role} (image or settings)"]


def _check_port(
    cfg: BerthConfig,
    publishers: list[Container | None],
    port: int | None = None,
    key: str = "listen.port",
) -> None:
    """Refuse a busy listen port before anything running is touched (it would be left down).
    The port is ours when the proxy (or an older Berth's hub) publishes it."""
    port = cfg.listen.port if port is None else port
    ours = any(
        container is not None
        and container.status == "running"
        and any(
            binding.get("HostPort") == str(port)
            for bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).values()
            for binding in bindings or []
        )
        for container in publishers
    )
    if not ours and not ports.port_free(cfg.listen.address, port):
        raise BerthError(
            f"port {port} on {cfg.listen.address} is already in use",
            hint=f"stop what listens there, or set {key} in berth.yaml",
        )


def public_url(cfg: BerthConfig, facts: HostFacts) -> str:
    host = cfg.listen.address
    if host in ("0.0.0.0", "::"):
        names = [*cfg.tls.hostnames, *facts.tls_names]
        host = names[0] if names else "localhost"
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    port = "" if cfg.listen.port == 443 else f":{cfg.listen.port}"
    return f"https://{host}{port}/"
