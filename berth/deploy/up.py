"""`berth up` against the engine: network, volumes, the service's containers, first admin."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import ssl
import tarfile
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import docker
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.models.networks import Network

from berth import ports, tls
from berth.config.schema import BerthConfig
from berth.deploy import hostfacts, layout, listed, pgio
from berth.deploy.network import allocate_subnet, bridge_name, network_problems
from berth.deploy.plan import (
    ContainerPlan,
    DeploymentPlan,
    HostFacts,
    NetworkPlan,
    VolumeLabels,
    config_changes,
    files_tar,
    plan_deployment,
)
from berth.errors import BerthError

START_TIMEOUT = 120.0
# How often a starting container is asked whether it is ready: on the path of every `berth up`
# that starts something (the hub answers about 1.5 s after its start; each ask is an inspect and
# a probe).
READY_POLL_SECONDS = 0.1
DEFAULT_ADMIN = "admin"
# Every container `berth up` makes, including those of older Berths, for down, status and logs.
SERVICE_CONTAINERS = (
    layout.ACME_CONTAINER,
    layout.FIREWALL_CONTAINER,
    layout.PROXY_CONTAINER,
    layout.HUB_CONTAINER,
    layout.GUARD_CONTAINER,
)


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
    operator = None
    if cfg.tls.cert and cfg.tls.key:
        operator = hostfacts.read_operator_tls(cfg.tls.cert, cfg.tls.key)
        tls.check_pair(*operator, source=f"{cfg.tls.cert} / {cfg.tls.key}")
    directory_ca = None
    if cfg.tls.acme and cfg.tls.acme.directory_ca:
        directory_ca = read_ca(cfg.tls.acme.directory_ca)
    return HostFacts(
        acme_directory_ca=directory_ca,
        subnet=_subnet(client, cfg.network),
        hub_image_id=str(client.images.get(hub_image).id),  # an Image from the engine has one
        socket_gid=hostfacts.socket_gid(),
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


def remove_unplanned_acme(client: docker.DockerClient, say: Callable[[str], None]) -> None:
    """tls.acme was removed from berth.yaml: its container goes (its volume stays)."""
    for name in (layout.ACME_CONTAINER, layout.ACME_CONTAINER + layout.PREVIOUS_SUFFIX):
        found = current(client, name)
        if found is not None:
            say(f"removing {name} (no tls.acme in berth.yaml)")
            found.remove(force=True)


def _find_network(client: docker.DockerClient, name: str) -> Network | None:
    # The engine's name filter matches substrings: compare names exactly.
    found = [n for n in client.networks.list(names=[name]) if n.name == name]
    return client.networks.get(str(found[0].id)) if found else None


def _subnet(client: docker.DockerClient, name: str) -> str:
    """The existing network's subnet when it is fit to keep, else one the engine allocates."""
    network = _find_network(client, name)
    if network is not None and not network_problems(network.attrs, bridge_name(name)):
        subnet: str = network.attrs["IPAM"]["Config"][0]["Subnet"]
        return subnet
    return allocate_subnet(client, f"{name}-subnet-probe")


def ensure_network(client: docker.DockerClient, plan: NetworkPlan) -> None:
    """Create the network as planned; one made differently (an older Berth's, without a fixed
    subnet) is made again while only the service's own containers are on it."""
    network = _find_network(client, plan.name)
    if network is not None:
        configs = (network.attrs.get("IPAM") or {}).get("Config") or [{}]
        bridge = plan.create_kwargs["options"]["com.docker.network.bridge.name"]
        fit = not network_problems(network.attrs, bridge)
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
        client.networks.create(**plan.create_kwargs)
    except APIError as exc:
        raise BerthError(
            f"the engine refused to create the network {plan.name}: {exc.explanation or exc}",
            hint=f"another network may use the subnet {plan.subnet} (docker network ls)",
        ) from exc


def _all_service_names() -> set[str]:
    return {n + suffix for n in SERVICE_CONTAINERS for suffix in ("", layout.PREVIOUS_SUFFIX)}


def ensure_volumes(client: docker.DockerClient, volumes: VolumeLabels) -> None:
    for name, labels in volumes.items():
        try:
            client.volumes.get(name)
        except NotFound:
            client.volumes.create(name, labels=labels)


def current(client: docker.DockerClient, name: str) -> Container | None:
    try:
        return client.containers.get(name)
    except NotFound:
        return None


def current_hub(client: docker.DockerClient) -> Container | None:
    found = current(client, layout.HUB_CONTAINER)
    if found is None:  # on a Swarm (backend: swarm): the running task of the berth-hub service
        tasks = client.containers.list(
            filters={"label": f"com.docker.swarm.service.name={layout.HUB_CONTAINER}"}
        )
        found = tasks[0] if tasks else None
    return found


def read_file(container: Container, path: str) -> str:
    """A text file from a container (running or stopped); empty when it is not there."""
    try:
        stream, _ = container.get_archive(path)
    except NotFound:
        return ""
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        extracted = tar.extractfile(member) if member else None
        return extracted.read().decode() if extracted else ""


def up_to_date(container: Container | None, plan: ContainerPlan) -> bool:
    return (
        container is not None
        and container.status == "running"
        and container.labels.get(layout.LABEL_FINGERPRINT) == plan.fingerprint
    )


def start_container(client: docker.DockerClient, plan: ContainerPlan) -> Container:
    container = client.containers.create(**plan.create_kwargs)
    try:
        if plan.files:
            container.put_archive("/", files_tar(plan.files))
        container.start()
    except APIError as exc:
        container.remove(force=True)
        message = exc.explanation or str(exc)
        published = plan.create_kwargs.get("ports", {}).get(f"{layout.PROXY_PORT}/tcp")
        if published and (
            "address already in use" in message or "port is already allocated" in message
        ):
            raise BerthError(
                f"port {published[1]} on {published[0]} is already in use",
                hint="stop what listens there or set listen.port in berth.yaml",
            ) from exc
        raise BerthError(f"the engine refused to start {plan.name}: {message}") from exc
    return container


@dataclass
class Swap:
    """One container being replaced: the previous one is kept, stopped, until the new is ready."""

    plan: ContainerPlan
    previous: Container | None
    new: Container | None = None

    def begin(self, client: docker.DockerClient) -> None:
        leftover = current(client, self.plan.name + layout.PREVIOUS_SUFFIX)
        if leftover is not None:  # from a run that was cut short
            leftover.remove(force=True)
        if self.previous is not None:
            self.previous.stop(timeout=15)
            self.previous.rename(self.plan.name + layout.PREVIOUS_SUFFIX)

    def undo(self, client: docker.DockerClient) -> None:
        failed = current(client, self.plan.name)
        if failed is not None:
            failed.remove(force=True)
        if self.previous is not None:
            self.previous.rename(self.plan.name)
            self.previous.start()

    def finish(self) -> None:
        if self.previous is not None:
            with contextlib.suppress(NotFound):
                self.previous.remove(force=True)


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
    if cfg.tls.acme:
        _check_port(cfg, [existing.get("acme")], cfg.tls.acme.http_port, "tls.acme.http_port")
    ensure_network(client, plan.network)
    ensure_volumes(client, plan.volumes)
    if plan.acme_network:
        ensure_acme_network(client, plan.acme_network)
    else:
        remove_unplanned_acme(client, say)
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
    return [f"the {plan.role} (image or settings)"]


def replace(client: docker.DockerClient, plan: DeploymentPlan, swaps: list[Swap]) -> None:
    """Start the planned containers in place of the stale ones; if any does not become ready,
    undo every replacement of this run, so a bad change never leaves the service down.

    The guard starts first (the hub polls user servers through it as it starts); the proxy
    and the hub then start together: the proxy waits for the token and certificate the hub
    writes, and the hub for the proxy's API.
    """
    by_role = {swap.plan.role: swap for swap in swaps}
    roles = [role for role in ("guard", "firewall", "proxy", "hub", "acme") if role in by_role]
    begun: list[Swap] = []
    try:
        for role in roles:
            by_role[role].begin(client)
            begun.append(by_role[role])
        waited: set[str] = set()
        for group in (("guard", "firewall"), ("proxy", "hub")):
            if group == ("proxy", "hub"):  # both need the firewall's rules; the hub the guard
                for first in ("guard", "firewall"):
                    if first in by_role and first not in waited:
                        wait_ready(by_role[first], plan)
                        waited.add(first)
            start_together(client, [by_role[role] for role in group if role in by_role])
        for role in roles:
            if role not in waited:
                wait_ready(by_role[role], plan)
    except BaseException:
        for swap in reversed(begun):
            with contextlib.suppress(APIError, NotFound):
                swap.undo(client)
        raise
    for swap in begun:
        swap.finish()
    if "proxy" in by_role and "hub" not in by_role:
        sync_routes(client)


def start_together(client: docker.DockerClient, swaps: list[Swap]) -> None:
    """Start the containers of one step at the same time: each is a few engine calls (create,
    copy its files in, start) that need not wait for the other's. Returns when every start has
    ended, so an undo finds every container made; the first failure is raised then."""
    with ThreadPoolExecutor(max_workers=max(1, len(swaps))) as pool:
        started = [(swap, pool.submit(start_container, client, swap.plan)) for swap in swaps]
    for swap, future in started:
        swap.new = future.result()


def wait_ready(swap: Swap, plan: DeploymentPlan, timeout: float = START_TIMEOUT) -> None:
    """Wait until the new container is healthy, or answers a probe (quicker than the engine's
    first healthcheck, which runs only after its interval); fail fast when it stops."""
    container = swap.new
    assert container is not None
    probe = _probe(swap.plan.role, plan, container)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs["State"]
        if state["Status"] in ("exited", "dead") or state.get("Restarting"):
            log = container.logs(tail=25)
            if pgio.ERROR_PREFIX.encode() in log:  # the entry said what is wrong, in one line
                raise BerthError(f"{swap.plan.name} did not start: {pgio.last_error(log, '')}")
            tail = log.decode(errors="replace").strip()
            raise BerthError(
                f"{swap.plan.name} stopped (exit status {state.get('ExitCode')}):\n{tail}"
            )
        if state.get("Health", {}).get("Status") == "healthy" or probe():
            return
        time.sleep(READY_POLL_SECONDS)
    tail = container.logs(tail=25).decode(errors="replace").strip()
    raise BerthError(f"{swap.plan.name} did not become ready within {timeout:.0f}s:\n{tail}")


def _probe(role: str, plan: DeploymentPlan, container: Container) -> Callable[[], bool]:
    def guard() -> bool:
        check = ["python3", "-m", "berth.deploy.hubcheck", "engine"]
        return container.exec_run(check).exit_code == 0

    def hub() -> bool:  # the host reaches the Berth network through its bridge
        url = f"http://{plan.network.hub_ip}:{layout.HUB_API_PORT}/hub/health"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                status: int = answer.status
            return status == 200
        except OSError:
            return False

    def proxy() -> bool:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        published = plan.proxy.create_kwargs["ports"][f"{layout.PROXY_PORT}/tcp"]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(published[0], published[0])
        try:
            with (
                socket.create_connection((host, published[1]), timeout=2) as raw,
                context.wrap_socket(raw),
            ):
                return True
        except OSError:
            return False

    def acme() -> bool:
        check = ["python3", "-m", "berth.deploy.hubcheck", "acme"]
        return container.exec_run(check).exit_code == 0

    def firewall() -> bool:  # its healthcheck's command, now rather than in 10 s
        check = plan.firewall.create_kwargs["healthcheck"]["test"][1:]
        return container.exec_run(check, user="root").exit_code == 0

    return {"guard": guard, "firewall": firewall, "hub": hub, "proxy": proxy, "acme": acme}.get(
        role, lambda: False
    )


def sync_routes(client: docker.DockerClient) -> None:
    """Ask the hub to add its routes to a new proxy now, not at its next periodic check."""
    hub = current_hub(client)
    if hub is not None and hub.status == "running":
        hub.exec_run(["python3", "-m", "berth.deploy.routes"])


def exec_accounts(
    client: docker.DockerClient, args: list[str], environment: dict[str, str] | None = None
) -> Any:
    """Run berth.deploy.accounts in the hub container and return its JSON answer."""
    hub = current_hub(client)
    if hub is None or hub.status != "running":
        raise BerthError("the hub is not running", hint="start it with `berth up`")
    result = hub.exec_run(
        ["python3", "-m", "berth.deploy.accounts", *args], environment=environment or {}
    )
    output = cast(bytes, result.output)  # not streamed: the whole output
    try:
        answer = json.loads(output.decode().strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BerthError(f"account operation failed:\n{output.decode()[-800:]}") from exc
    if isinstance(answer, dict) and "error" in answer:
        raise BerthError(answer["error"])
    if result.exit_code != 0:
        raise BerthError("account operation failed")
    return answer


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
