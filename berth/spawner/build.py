"""From plain inputs to a :class:`~berth.spawner.specs.ContainerSpec` (pure: no spawner, no I/O).

A back end's spawner gathers its settings into a :class:`SpecInputs` (resolving callables,
reading JupyterHub's environment) and hands it here; what comes out is compared as data in the
unit tests. Configuration mistakes become clear spawn errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from berth import names, sizes

from . import errors, specs

LIMIT_ENV = ("MEM_LIMIT", "CPU_LIMIT")  # JupyterHub's names, read by e.g. jupyter-resource-usage


@dataclass(frozen=True)
class SpecInputs:
    """Everything a container spec is made from, as plain values."""

    image: str
    identity: specs.Identity
    namespace: Mapping[str, str]  # the template fields (berth.names.template_namespace)
    name_template: str
    environment: Mapping[str, str]  # JupyterHub's environment, without limits
    resources: specs.Resources = field(default_factory=specs.Resources)
    networking: specs.Networking = field(default_factory=specs.Networking)
    volumes: Mapping[str, str | Mapping[str, str]] = field(default_factory=dict)  # src -> target
    read_only_volumes: Mapping[str, str] = field(default_factory=dict)
    command: Sequence[str] | None = None
    run_as_root: bool = False
    extra_create_kwargs: Mapping[str, Any] = field(default_factory=dict)
    extra_host_config: Mapping[str, Any] = field(default_factory=dict)
    device_requests: Sequence[Mapping[str, Any]] = ()  # GPUs (berth.spawner.gpus)


def resources(
    mem_limit: Any,
    cpu_limit: Any,
    pids_limit: int | None = None,
    mem_guarantee: Any = None,
    cpu_guarantee: float | None = None,
) -> specs.Resources:
    """Limits as settings give them (``'2G'``, ``0`` for none, …) -> :class:`~.specs.Resources`."""
    try:
        return specs.Resources(
            mem_limit=sizes.parse_bytes(mem_limit) or None,  # 0: no limit
            cpu_limit=float(cpu_limit) if cpu_limit else None,
            mem_guarantee=sizes.parse_bytes(mem_guarantee) or None,
            cpu_guarantee=float(cpu_guarantee) if cpu_guarantee else None,
            pids_limit=int(pids_limit) if pids_limit else None,
        )
    except (TypeError, ValueError) as exc:
        raise errors.bad_config(f"resource limits: {exc}") from exc


def limit_env(environment: Mapping[str, Any], res: specs.Resources) -> dict[str, str]:
    """The environment with ``MEM_LIMIT``/``CPU_LIMIT`` telling the server its resolved limits."""
    env = {k: str(v) for k, v in environment.items() if k not in LIMIT_ENV}
    if res.mem_limit:
        env["MEM_LIMIT"] = str(res.mem_limit)
    if res.cpu_limit:
        env["CPU_LIMIT"] = str(res.cpu_limit)
    return env


def container_spec(inputs: SpecInputs) -> specs.ContainerSpec:
    """Render the name and mounts, add the limits to the environment, work out privileges."""
    try:
        name = names.check_docker_name(names.render(inputs.name_template, inputs.namespace))
        mounts = specs.mounts_from_config(
            inputs.volumes, inputs.read_only_volumes, inputs.namespace
        )
    except (names.InvalidNameError, ValueError) as exc:
        raise errors.bad_config(str(exc)) from exc
    env = limit_env(inputs.environment, inputs.resources)
    return specs.ContainerSpec(
        name=name,
        image=inputs.image,
        identity=inputs.identity,
        command=list(inputs.command) if inputs.command else None,
        environment=env,
        mounts=mounts,
        resources=inputs.resources,
        networking=inputs.networking,
        privileges=specs.start_privileges(env, inputs.run_as_root),
        extra_create_kwargs=dict(inputs.extra_create_kwargs),
        extra_host_config=dict(inputs.extra_host_config),
        device_requests=tuple(dict(request) for request in inputs.device_requests),
    )
