"""Shared by the Swarm guard's policy tests: the limits of a deployment, the Swarm spawner's
own requests (built by its builder) and the judging helpers."""

from __future__ import annotations

import json
from typing import Any

from guard_requests import sent

from berth.guard.bodies import Limits, SwarmLimits
from berth.guard.policy import Decision, Found, Ref, Request, decide
from berth.spawner import specs
from berth.spawner import swarm_specs as ss

PREFIX = "berth"
IMAGE = "node-0:5000/berth/base-notebook:latest"
NETWORK = "berth-net"
SWARM = SwarmLimits(
    images=(IMAGE, "node-0:5000/berth/scipy-notebook:latest"),
    volume_templates=("berth-user-{username}",),
    max_memory=2 * 1024**3,
    max_cpus=1.0,
    max_pids=1024,
    constraints=("node.role==worker",),
    reserved_names=("berth-hub", "berth-proxy", "berth-registry", "berth-engine-guard"),
)
LIMITS = Limits(PREFIX, networks=(NETWORK,), swarm=SWARM)
ADA = specs.Identity(username="ada", prefix=PREFIX)
OURS = specs.labels(ADA)
SERVICE_ID = "s" * 25
TASK_ID = "t" * 25


def service_spec(**changes: Any) -> ss.ServiceSpec:
    """What the Swarm spawner builds for ada's default server under berth.yaml's settings."""
    fields: dict[str, Any] = {
        "name": "berth-ada",
        "image": IMAGE,
        "identity": ADA,
        "network_name": NETWORK,
        "mounts": (specs.Mount("berth-user-ada", "/home/jovyan/work"),),
        "resources": specs.Resources(mem_limit=2 * 1024**3, cpu_limit=1.0, pids_limit=1024),
        "environment": {"JUPYTERHUB_API_TOKEN": "x"},
        "placement": ss.Placement(("node.role==worker",)),
    }
    return ss.ServiceSpec(**{**fields, **changes})


def create(spec: ss.ServiceSpec | None = None) -> Request:
    kwargs = ss.service_create_kwargs(spec or service_spec())
    return sent(lambda api: api.create_service(**kwargs))


def edited(change: Any) -> Request:
    """The spawner's service body after ``change(body)`` edits it (as a hostile hub would)."""
    request = create()
    body = json.loads(request.body)
    change(body)
    return Request(request.method, request.target, request.headers, json.dumps(body).encode())


def container(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = body["TaskTemplate"]["ContainerSpec"]
    return result


def judge(request: Request, facts: dict[Ref, Found | None] | None = None) -> Decision:
    return decide(request, LIMITS, facts or {})


def refusal(request: Request, facts: dict[Ref, Found | None] | None = None) -> str:
    decision = judge(request, facts)
    assert not decision.allowed, f"allowed: {request}"
    return decision.reason
