"""From a configured spawner to a :class:`~berth.spawner.specs.ContainerSpec` (no I/O)."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from jupyterhub.spawner import Spawner

from berth import names

from . import errors, specs

if TYPE_CHECKING:
    from .container import ContainerSpawner


async def resolve(value: Any, spawner: Spawner) -> Any:
    """The usual JupyterHub pattern: a setting may be a callable of the spawner (maybe async)."""
    if callable(value):
        value = value(spawner)
        if inspect.isawaitable(value):
            value = await value
    return value


def networking(spawner: ContainerSpawner) -> specs.Networking:
    return specs.Networking(
        port=spawner.port,
        network_name=spawner.network_name,
        use_internal_ip=spawner.use_internal_ip,
        host_ip=spawner.host_ip,
    )


async def build_spec(
    spawner: ContainerSpawner, image: str, mem_limit: int | None, cpu_limit: float | None
) -> specs.ContainerSpec:
    """Render names and mounts, collect env and settings; config mistakes become clear errors."""
    namespace = spawner.template_namespace()
    try:
        name = names.check_docker_name(names.render(spawner.name_template, namespace))
        mounts = specs.mounts_from_config(spawner.volumes, spawner.read_only_volumes, namespace)
        mem_guarantee = specs.parse_bytes(spawner.mem_guarantee)
    except (names.InvalidNameError, ValueError) as exc:
        raise errors.bad_config(str(exc)) from exc
    env = {k: str(v) for k, v in spawner.get_env().items()}
    command = [*spawner.cmd, *spawner.get_args()] if spawner.cmd else None
    return specs.ContainerSpec(
        name=name,
        image=image,
        identity=spawner.identity,
        command=command,
        environment=env,
        mounts=mounts,
        resources=specs.Resources(
            mem_limit=mem_limit,
            cpu_limit=cpu_limit,
            mem_guarantee=mem_guarantee,
            cpu_guarantee=spawner.cpu_guarantee,
            pids_limit=spawner.pids_limit or None,
        ),
        networking=networking(spawner),
        privileges=specs.start_privileges(env, spawner.run_as_root),
        extra_create_kwargs=await resolve(spawner.extra_create_kwargs, spawner) or {},
        extra_host_config=await resolve(spawner.extra_host_config, spawner) or {},
    )
