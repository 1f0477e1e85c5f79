"""berth-fence in `berth up` on a Swarm: its plan (pure) and keeping it current.

A global service from the hub's image, pulled by every node from Berth's registry (swarm_plan
pushes the hub image there for it). The rules and the loop are fence.py / fencedaemon.py. It is
made once the images are pushed; the hub's servers wait for it (berth/fence_signal.py), so a
server spawned while it comes up only starts a little later. Replacing it leaves every rule in
place (they are in the servers' namespaces); the new one checks them all as it starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from berth.config.schema import BerthConfig
from berth.deploy import layout
from berth.deploy.fence import FENCE_SERVICE, FenceSpec, fence_service_kwargs
from berth.deploy.plan import fingerprint

if TYPE_CHECKING:
    import docker

    from berth.deploy.swarm_plan import ServicePlan, SwarmFacts

SERVER_PORT = 8888  # the spawners' port for user servers (BerthSpawner's default)


def fence_spec(cfg: BerthConfig) -> FenceSpec:
    return FenceSpec(
        network=cfg.network,
        hub=layout.HUB_CONTAINER,
        hub_port=layout.HUB_API_PORT,
        relays=(layout.PROXY_CONTAINER,),
        server_port=SERVER_PORT,
        egress=cfg.egress.mode,
        allow=tuple(cfg.egress.allow),
    )


def plan_fence(cfg: BerthConfig, facts: SwarmFacts, image: str) -> ServicePlan:
    """The fence's service; ``image`` is the hub image as the nodes pull it."""
    from berth.deploy.swarm_plan import LABEL_STACK, STACK_VALUE, ServicePlan

    kwargs = fence_service_kwargs(fence_spec(cfg), image)
    print_ = fingerprint(kwargs, {}, facts.hub_image_id)
    kwargs["labels"] = {
        LABEL_STACK: STACK_VALUE,
        layout.LABEL_ROLE: "fence",
        layout.LABEL_FINGERPRINT: print_,
    }
    return ServicePlan("fence", kwargs, print_)


def image_commands(
    client: docker.DockerClient, cfg: BerthConfig
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each configured image's CMD, read on the manager (which has the images it pushes): the
    hub then starts servers behind the fence's wait without asking the engine about images."""
    import docker.errors

    images = [cfg.images.default]
    allowed = cfg.images.allowed
    images += list(allowed.values() if isinstance(allowed, dict) else allowed)
    found = []
    for image in dict.fromkeys(images):
        try:
            command = (client.images.get(image).attrs.get("Config") or {}).get("Cmd") or []
        except docker.errors.ImageNotFound:
            continue  # the spawner reads it on the manager when it starts a server
        if command:
            found.append((image, tuple(str(part) for part in command)))
    return tuple(found)


def spawner_image_commands(facts: SwarmFacts) -> dict[str, list[str]]:
    """SwarmSpawner.image_commands: keyed by the names the spawner sees (the registry's)."""
    from berth.deploy.swarm_plan import registry_name

    return {registry_name(image, facts.registry): list(cmd) for image, cmd in facts.image_commands}


def ensure_fence(client: docker.DockerClient, plan: ServicePlan) -> bool:
    """Make the fence service match ``plan``; whether it had to be (re)made."""
    from berth.deploy.swarm_up import current_service, remove_service, up_to_date

    found = current_service(client, FENCE_SERVICE)
    if up_to_date(found, plan):
        return False
    if found is not None:
        remove_service(client, FENCE_SERVICE)
    client.api.create_service(**plan.create_kwargs)
    return True


def fence_state(client: docker.DockerClient, nodes: list[dict[str, Any]]) -> str:
    """For `berth status`: on how many of the ready nodes the fence runs (servers on a node
    without it wait, then fail naming it)."""
    from berth.deploy.swarm_up import current_service

    found = current_service(client, FENCE_SERVICE)
    if found is None:
        return "not created (run berth up)"
    ready = {n["ID"] for n in nodes if (n.get("Status") or {}).get("State") == "ready"}
    tasks = client.api.tasks(filters={"service": found["ID"], "desired-state": "running"})
    running = {t.get("NodeID") for t in tasks if (t.get("Status") or {}).get("State") == "running"}
    return f"running on {len(ready & running)} of {len(ready)} ready nodes"
