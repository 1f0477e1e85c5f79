"""`berth up` / `down` against a Swarm manager's engine (berth.yaml `backend: swarm`).

Makes the Swarm match swarm_plan.py's plan: the overlay network, the manager's local volumes,
content-named secrets and configs, the registry (then the notebook images pushed to it), the hub
and the proxy. A service whose fingerprint matches is left alone, so a second run changes
nothing; a changed one is removed and made again (its volumes stay, so users stay logged in).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import docker
from docker.errors import APIError, NotFound

from berth import tls
from berth.config.schema import BerthConfig
from berth.deploy import hostfacts, layout, listed
from berth.deploy.fence import FENCE_SERVICE
from berth.deploy.hub import exec_accounts
from berth.deploy.swarm_fence import ensure_fence, image_commands
from berth.deploy.swarm_plan import (
    DOCKER_SOCKET,
    LABEL_STACK,
    REGISTRY_PORT,
    REGISTRY_SERVICE,
    STACK_VALUE,
    ServicePlan,
    SwarmFacts,
    SwarmPlan,
    plan_swarm,
    with_ids,
)
from berth.deploy.up import UpResult, ensure_volumes, public_url, with_default_admin
from berth.errors import BerthError
from berth.spawner import specs

START_TIMEOUT = 180.0
PUSH_TIMEOUT = 120.0
SERVICE_LABEL = "com.docker.swarm.service.name"  # the engine's label on a task's container
FAILED_TASK_STATES = frozenset({"failed", "rejected", "complete", "shutdown", "orphaned"})


def manager_node(client: docker.DockerClient) -> tuple[str, str]:
    """(node ID, hostname) of the manager the client talks to; refused on anything else."""
    info = client.info()
    swarm = info.get("Swarm") or {}
    if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
        raise BerthError(
            "backend: swarm needs the engine of a Swarm manager, and this engine is not one",
            hint="run `berth up` on a manager (docker swarm init), or set DOCKER_HOST to one",
        )
    return str(swarm["NodeID"]), str(info["Name"])


def socket_gid(client: docker.DockerClient, image: str) -> int:
    """The group of the manager's Engine API socket, asked on the manager itself (`berth up`
    may run elsewhere, with DOCKER_HOST naming the manager)."""
    script = f"import os; print(os.stat({DOCKER_SOCKET!r}).st_gid)"
    output = client.containers.run(
        image,
        ["python3", "-c", script],
        name=f"berth-socket-probe-{uuid.uuid4().hex[:8]}",
        network_mode="none",
        volumes={DOCKER_SOCKET: {"bind": DOCKER_SOCKET, "mode": "ro"}},
        remove=True,
    )
    return int(output.decode().strip())


def gather_facts(
    client: docker.DockerClient, cfg: BerthConfig, hub_image: str, registry_image: str
) -> SwarmFacts:
    node_id, hostname = manager_node(client)
    operator = None
    if cfg.tls.cert and cfg.tls.key:
        operator = hostfacts.read_operator_tls(cfg.tls.cert, cfg.tls.key)
        tls.check_pair(*operator, source=f"{cfg.tls.cert} / {cfg.tls.key}")
    return SwarmFacts(
        hub_image=hub_image,
        hub_image_id=str(client.images.get(hub_image).id),
        registry_image=registry_image,
        registry_image_id=str(client.images.get(registry_image).id),
        manager_node_id=node_id,
        registry=f"{hostname}:{REGISTRY_PORT}",
        socket_gid=socket_gid(client, hub_image),
        tls_names=hostfacts.host_names(cfg.listen.address),
        operator_tls=operator,
        image_commands=image_commands(client, cfg),
    )


def ensure_network(client: docker.DockerClient, plan: SwarmPlan) -> None:
    name = plan.network["name"]
    found = [n for n in client.networks.list(names=[name]) if n.name == name]
    if found:
        attrs = client.networks.get(str(found[0].id)).attrs
        if attrs.get("Driver") != "overlay" or not attrs.get("Attachable"):
            raise BerthError(
                f"the network {name} exists but is not an attachable overlay network",
                hint="remove it, or name another network in berth.yaml (network:)",
            )
        return
    client.networks.create(**plan.network)


def ensure_objects(client: docker.DockerClient, plan: SwarmPlan) -> dict[str, str]:
    """Create the secrets and configs that are missing; name -> ID of every planned one."""
    api = client.api
    labels = {LABEL_STACK: STACK_VALUE}
    ids: dict[str, str] = {}
    have = {s["Spec"]["Name"]: s["ID"] for s in api.secrets(filters={"label": LABEL_STACK})}
    for secret in plan.secrets:
        if secret.name not in have:
            have[secret.name] = api.create_secret(secret.name, secret.data, labels=labels)["ID"]
        ids[secret.name] = have[secret.name]
    have = {c["Spec"]["Name"]: c["ID"] for c in api.configs(filters={"label": LABEL_STACK})}
    for config in plan.configs:
        if config.name not in have:
            have[config.name] = api.create_config(config.name, config.data, labels=labels)["ID"]
        ids[config.name] = have[config.name]
    return ids


def remove_unused_objects(client: docker.DockerClient, keep: set[str]) -> None:
    """Secrets and configs of earlier runs that no service uses any more."""
    api = client.api
    for secret in api.secrets(filters={"label": LABEL_STACK}):
        if secret["Spec"]["Name"] not in keep:
            with contextlib.suppress(APIError, NotFound):
                api.remove_secret(secret["ID"])
    for config in api.configs(filters={"label": LABEL_STACK}):
        if config["Spec"]["Name"] not in keep:
            with contextlib.suppress(APIError, NotFound):
                api.remove_config(config["ID"])


def current_service(client: docker.DockerClient, name: str) -> dict[str, Any] | None:
    found = [s for s in client.api.services(filters={"name": name}) if s["Spec"]["Name"] == name]
    return found[0] if found else None


def is_berths(service: dict[str, Any]) -> bool:
    """Whether a service carries Berth's stack label: a service that merely has one of Berth's
    names (someone else's `berth-hub`) is never replaced or removed."""
    labels = service.get("Spec", {}).get("Labels") or {}
    return labels.get(LABEL_STACK) == STACK_VALUE


def refuse_foreign(client: docker.DockerClient, names: Iterable[str], doing: str) -> None:
    """Raise, before anything changes, when a service with one of ``names`` is not Berth's."""
    foreign = [
        name
        for name in names
        if (found := current_service(client, name)) is not None and not is_berths(found)
    ]
    if foreign:
        raise BerthError(
            f"{doing}: the service(s) {', '.join(foreign)} on this Swarm are not Berth's (no "
            f"{LABEL_STACK}={STACK_VALUE} label); nothing was changed",
            hint="rename or remove them yourself (docker service rm NAME) if they are not needed",
        )


def up_to_date(service: dict[str, Any] | None, plan: ServicePlan) -> bool:
    if service is None:
        return False
    labels = service["Spec"].get("Labels") or {}
    return labels.get(layout.LABEL_FINGERPRINT) == plan.fingerprint


def remove_service(client: docker.DockerClient, name: str, timeout: float = 60) -> None:
    """Remove a service and wait (bounded) until its containers on this node are gone, so a
    successor can publish the same host port and mount the same volumes. A service of that
    name that is not Berth's is refused, not removed."""
    found = current_service(client, name)
    if found is None:
        return
    refuse_foreign(client, [name], f"removing {name}")
    with contextlib.suppress(NotFound):
        client.api.remove_service(found["ID"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not client.containers.list(all=True, filters={"label": f"{SERVICE_LABEL}={name}"}):
            return
        time.sleep(0.5)


def task_container(client: docker.DockerClient, name: str) -> Any | None:
    """The running container of service ``name`` on this node (all Berth's services run on
    the manager `berth up` talks to)."""
    found = client.containers.list(filters={"label": f"{SERVICE_LABEL}={name}"})
    return found[0] if found else None


def wait_running(
    client: docker.DockerClient, plan: ServicePlan, ready: Callable[[Any], bool],
    timeout: float = START_TIMEOUT,
) -> None:  # fmt: skip
    """Until the service's task runs (with a health check: until the Swarm saw it healthy) and
    ``ready(container)``; fail at once if the task fails."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        tasks = client.api.tasks(filters={"service": plan.name, "desired-state": "running"})
        running = False
        for task in tasks:
            status = task.get("Status") or {}
            last = f"{status.get('State')}: {status.get('Err') or status.get('Message', '')}"
            if status.get("State") in FAILED_TASK_STATES:
                raise BerthError(f"{plan.name} could not start ({last}){_logs(client, plan)}")
            running = running or status.get("State") == "running"
        container = task_container(client, plan.name) if running else None
        if container is not None and ready(container):
            return
        time.sleep(0.5)
    raise BerthError(
        f"{plan.name} did not become ready within {timeout:.0f}s ({last}){_logs(client, plan)}"
    )


def _logs(client: docker.DockerClient, plan: ServicePlan) -> str:
    found = client.containers.list(all=True, filters={"label": f"{SERVICE_LABEL}={plan.name}"})
    if not found:
        return ""
    return ":\n" + found[0].logs(tail=25).decode(errors="replace").strip()


def _check(role: str) -> Callable[[Any], bool]:
    def ready(container: Any) -> bool:
        if role == "registry":  # no Python in that image: running is enough; pushes retry
            return True
        check = ["python3", "-m", "berth.deploy.hubcheck", {"guard": "engine"}.get(role, role)]
        return bool(container.exec_run(check).exit_code == 0)

    return ready


def push_images(
    client: docker.DockerClient, pushes: tuple[tuple[str, str], ...], say: Callable[[str], None]
) -> None:
    """Tag each notebook image with the registry's name for it and push it; retried (bounded)
    while the registry is still starting."""
    for image, target in pushes:
        repository, tag = docker.utils.parse_repository_tag(target)
        client.api.tag(image, repository, tag or "latest")
        say(f"pushing {image} to the Swarm's registry as {target}")
        deadline = time.monotonic() + PUSH_TIMEOUT
        while True:
            error = ""
            for record in client.api.push(repository, tag or "latest", stream=True, decode=True):
                error = record.get("error", error)
            if not error:
                break
            if time.monotonic() > deadline:
                raise BerthError(
                    f"could not push {target}: {error}",
                    hint="every node's engine must trust the registry "
                    f"(insecure-registries: [{target.split('/', 1)[0]!r}] in daemon.json)",
                )
            time.sleep(2)


def apply(
    client: docker.DockerClient,
    cfg: BerthConfig,
    hub_image: str,
    registry_image: str,
    say: Callable[[str], None],
) -> UpResult:
    """Make the Swarm match ``cfg``; replace only the services whose inputs changed."""
    cfg = with_default_admin(cfg)
    facts = gather_facts(client, cfg, hub_image, registry_image)
    plan = plan_swarm(cfg, facts)
    refuse_foreign(client, [s.name for s in plan.services] + [FENCE_SERVICE], "berth up")
    ensure_network(client, plan)
    ensure_volumes(client, plan.volumes)
    ids = ensure_objects(client, plan)
    existing = {s.role: current_service(client, s.name) for s in plan.services}
    stale = [s for s in plan.services if not up_to_date(existing[s.role], s)]
    if stale:
        say(f"starting {', '.join(s.name for s in stale)} (user servers keep running)")
    # The hub and the proxy go together (the proxy waits for the hub's files): the proxy
    # first, so it never serves a hub that is gone.
    for service in (plan.proxy, plan.hub, plan.guard, plan.registry):
        if service in stale and existing[service.role] is not None:
            remove_service(client, service.name)
    for service in plan.services:
        if service in stale:
            client.api.create_service(**with_ids(service, ids))
    if plan.registry in stale:
        wait_running(client, plan.registry, _check("registry"))
    push_images(client, plan.pushes, say)
    if plan.fence is not None and ensure_fence(client, plan.fence):
        say("starting berth-fence on every node (user servers wait for it)")
        stale.append(plan.fence)
    for service in (plan.guard, plan.hub, plan.proxy):
        wait_running(client, service, _check(service.role))
    remove_unused_objects(client, set(ids))
    changes = [f"{s.name} (image, settings, secrets or config)" for s in stale]
    url = public_url(cfg, facts)  # type: ignore[arg-type]  # reads tls_names only
    result = UpResult(url, changed=bool(stale), changes=changes)
    if cfg.auth.type == "native":
        result.accounts = listed.ensure_listed(lambda a: exec_accounts(client, a), cfg.users)
    return result


def user_service_filters() -> dict[str, list[str]]:
    """This deployment's user servers: services the Swarm spawner made with Berth's prefix."""
    return {
        "label": [
            f"{specs.LABEL_MANAGED}=true",
            f"{specs.LABEL_ROLE}={specs.ROLE_SINGLEUSER}",
            f"{specs.LABEL_PREFIX}={layout.SPAWNER_PREFIX}",
        ]
    }


def stop_all(client: docker.DockerClient) -> int:
    """Remove the hub, the proxy, the engine guard, the registry and the users' server services
    (volumes, the network and the images in the registry's volume stay); how many user servers
    stopped."""
    manager_node(client)
    own = (layout.HUB_CONTAINER, layout.PROXY_CONTAINER, layout.GUARD_CONTAINER)
    refuse_foreign(client, [*own, REGISTRY_SERVICE, FENCE_SERVICE], "berth down")
    for name in own:
        remove_service(client, name)
    servers = client.api.services(filters=user_service_filters())
    for service in servers:
        with contextlib.suppress(NotFound):
            client.api.remove_service(service["ID"])
    remove_service(client, REGISTRY_SERVICE)
    remove_service(client, FENCE_SERVICE)  # after the servers: nothing left to fence
    remove_unused_objects(client, set())
    return len(servers)
