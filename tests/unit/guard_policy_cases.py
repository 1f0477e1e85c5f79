"""What the engine guard's policy tests share: this deployment's limits, the spawner's own
requests, and short ways to judge one (tests/unit/test_guard_policy*.py)."""

from __future__ import annotations

import json
from typing import Any

from guard_requests import create_container

from berth.guard.bodies import Limits
from berth.guard.policy import Decision, Found, Ref, Request, decide
from berth.spawner import specs

PREFIX = "berth-guard-unit"
LIMITS = Limits(PREFIX, allow_binds=("/srv/berth-shared",), networks=("berth-net", "bridge"))
OURS = {specs.LABEL_MANAGED: "true", specs.LABEL_PREFIX: PREFIX}
CID = "c" * 64
EXEC_ID = "e" * 64
IDENTITY = specs.Identity(username="ada", prefix=PREFIX)


def spawner_kwargs(**changes: Any) -> dict[str, Any]:
    """The spawner's create kwargs for a default user server, with changes to the spec."""
    fields: dict[str, Any] = {"mounts": (specs.Mount(f"{PREFIX}-ada", "/home/jovyan"),)}
    spec = specs.ContainerSpec(
        name=f"{PREFIX}-ada",
        image="berth/base-notebook:latest",
        identity=IDENTITY,
        **{**fields, **changes},
    )
    return specs.container_create_kwargs(spec)


def volume_facts(*names: str, labels: dict[str, str] | None = None) -> dict[Ref, Found | None]:
    return {Ref("volume", name): Found(name, OURS if labels is None else labels) for name in names}


def judge(request: Request, facts: dict[Ref, Found | None] | None = None) -> Decision:
    return decide(request, LIMITS, facts or {})


def refusal(request: Request, facts: dict[Ref, Found | None] | None = None) -> str:
    decision = judge(request, facts)
    assert not decision.allowed, f"allowed: {request}"
    return decision.reason


def with_host_config(**host_config: Any) -> Request:
    """A Berth-labelled container whose host config has these docker-py keyword arguments."""
    base: dict[str, Any] = {"cap_drop": ["ALL"], "security_opt": ["no-new-privileges"]}
    return create_container(
        {
            "image": "berth/base-notebook:latest",
            "labels": OURS,
            "host_config": {**base, **host_config},
        }
    )


def raw_create(body: dict[str, Any] | bytes) -> Request:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Request("POST", "/v1.41/containers/create", {"content-type": "application/json"}, data)

