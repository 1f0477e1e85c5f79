"""`berth up` against the engine: images, network, data volume, the hub container, first admin."""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import docker
from docker.errors import APIError, NotFound
from docker.models.containers import Container

from berth import engine, ports, tls
from berth.config.schema import BerthConfig
from berth.deploy import hostfacts, layout, listed
from berth.deploy.plan import HostFacts, HubPlan, config_changes, files_tar, plan_hub
from berth.errors import BerthError

HUB_START_TIMEOUT = 120.0
PREVIOUS_HUB = f"{layout.HUB_CONTAINER}-previous"  # kept stopped until the new hub is healthy
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
    operator = None
    if cfg.tls.cert and cfg.tls.key:
        operator = hostfacts.read_operator_tls(cfg.tls.cert, cfg.tls.key)
        tls.check_pair(*operator, source=f"{cfg.tls.cert} / {cfg.tls.key}")
    return HostFacts(
        hub_image_id=client.images.get(hub_image).id,
        socket_gid=hostfacts.socket_gid(),
        tls_names=hostfacts.host_names(cfg.listen.address),
        operator_tls=operator,
    )


def ensure_network(client: docker.DockerClient, name: str) -> None:
    # The engine's name filter matches substrings: compare names exactly.
    if not any(network.name == name for network in client.networks.list(names=[name])):
        client.networks.create(name, driver="bridge", labels={"berth.managed": "true"})


def ensure_volume(client: docker.DockerClient, name: str) -> None:
    try:
        client.volumes.get(name)
    except NotFound:
        client.volumes.create(name, labels={"berth.managed": "true", "berth.role": "hub-data"})


def current_hub(client: docker.DockerClient) -> Container | None:
    try:
        return client.containers.get(layout.HUB_CONTAINER)
    except NotFound:
        return None


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


def start_hub(client: docker.DockerClient, plan: HubPlan) -> Container:
    container = client.containers.create(**plan.create_kwargs)
    try:
        container.put_archive("/", files_tar(plan.files))
        container.start()
    except APIError as exc:
        container.remove(force=True)
        message = exc.explanation or str(exc)
        if "address already in use" in message or "port is already allocated" in message:
            port = plan.create_kwargs["ports"][f"{layout.HUB_PORT}/tcp"]
            raise BerthError(
                f"port {port[1]} on {port[0]} is already in use",
                hint="stop what listens there or set listen.port in berth.yaml",
            ) from exc
        raise BerthError(f"the engine refused to start the hub: {message}") from exc
    return container


def apply(
    client: docker.DockerClient,
    cfg: BerthConfig,
    hub_image: str,
    say: Callable[[str], None],
) -> UpResult:
    """Make the running hub match `cfg`; restart it only when something it uses changed."""
    cfg = with_default_admin(cfg)
    facts = gather_facts(client, cfg, hub_image)
    plan = plan_hub(cfg, facts)
    ensure_network(client, cfg.network)
    ensure_volume(client, cfg.hub.data_volume)
    url = public_url(cfg, facts)
    existing = current_hub(client)
    _check_port(cfg, existing)
    same = (
        existing is not None and existing.labels.get(layout.LABEL_FINGERPRINT) == plan.fingerprint
    )
    if existing is not None and same and existing.status == "running":
        result = UpResult(url, changed=False)
    else:
        changes = _describe_changes(existing, plan, same)
        say("restarting the hub (user servers keep running)" if existing else "starting the hub")
        _replace_hub(client, existing, plan)
        result = UpResult(url, changed=True, changes=changes)
    # Every run, not only after a restart: an account missing after a run cut short is made
    # now (until then the hub refuses sign-ups of listed names, so nobody can take it).
    if cfg.auth.type == "native":
        result.accounts = listed.ensure_listed(lambda a: exec_accounts(client, a), cfg.users)
    return result


def _describe_changes(existing: Container | None, plan: HubPlan, same: bool) -> list[str]:
    if existing is None:
        return []
    if same:
        return ["the hub was not running"]
    changes = config_changes(read_file(existing, layout.CONFIG_FILE), plan.config_py)
    return changes or ["the hub image, TLS, published port, data volume or a secret file"]


def _replace_hub(client: docker.DockerClient, existing: Container | None, plan: HubPlan) -> None:
    """Start the planned hub; if it does not come up healthy, put the previous one back."""
    if existing is not None:
        existing.stop(timeout=15)
        existing.rename(PREVIOUS_HUB)
    try:
        engine.wait_healthy(start_hub(client, plan), "the hub", HUB_START_TIMEOUT, interval=0.5)
    except BaseException:
        with contextlib.suppress(NotFound):
            client.containers.get(layout.HUB_CONTAINER).remove(force=True)
        if existing is not None:
            existing.rename(layout.HUB_CONTAINER)
            existing.start()
        raise
    if existing is not None:
        existing.remove()


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
    try:
        answer = json.loads(result.output.decode().strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise BerthError(f"account operation failed:\n{result.output.decode()[-800:]}") from exc
    if isinstance(answer, dict) and "error" in answer:
        raise BerthError(answer["error"])
    if result.exit_code != 0:
        raise BerthError("account operation failed")
    return answer


def _check_port(cfg: BerthConfig, existing: Container | None) -> None:
    """Refuse a busy listen port before the running hub is touched (it would be left down)."""
    ours = (
        existing is not None
        and existing.status == "running"
        and any(
            binding.get("HostPort") == str(cfg.listen.port)
            for bindings in (existing.attrs["NetworkSettings"]["Ports"] or {}).values()
            for binding in bindings or []
        )
    )
    if not ours and not ports.port_free(cfg.listen.address, cfg.listen.port):
        raise BerthError(
            f"port {cfg.listen.port} on {cfg.listen.address} is already in use",
            hint="stop what listens there, or set listen.port in berth.yaml",
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
