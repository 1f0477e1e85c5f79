"""The engine guard on a Swarm manager (``--swarm``), as pure functions, on the requests
docker-py really sends for the Swarm spawner's calls (built by the spawner's own builder).

Every refusal below is an attack a hostile hub could make. On main (before the guard knew the
Swarm) the hub had the manager's own socket with `backend: swarm`, so each of these requests
would have been carried out by the manager; each test here fails on main, where
``berth.guard.services`` and ``Limits.swarm`` do not exist.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from guard_requests import sent
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from swarm_guard_cases import (
    ADA,
    LIMITS,
    NETWORK,
    OURS,
    PREFIX,
    SERVICE_ID,
    SWARM,
    TASK_ID,
    create,
    edited,
    judge,
    refusal,
    service_spec,
)

from berth import names
from berth.guard import services
from berth.guard.bodies import Limits, SwarmLimits
from berth.guard.policy import Decision, Found, Ref, Request, decide, needs
from berth.spawner import specs
from berth.spawner import swarm_specs as ss

# -- what the Swarm spawner sends is allowed --------------------------------------------------


def test_the_spawners_service_is_allowed_when_its_volume_is_new_or_ada_s() -> None:
    request = create()
    volume = Ref("swarm-volume", "berth-user-ada", owner="ada")
    assert needs(request, LIMITS) == (volume,)
    assert judge(request, {volume: None}) == Decision(True, target="/v1.41/services/create")
    mine = specs.labels(ADA, role=specs.ROLE_VOLUME)
    assert judge(request, {volume: Found("berth-user-ada", mine)}).allowed


def test_root_start_pinned_node_reservation_and_spread_are_allowed() -> None:
    env = {"GRANT_SUDO": "yes"}
    spec = service_spec(
        environment=env,
        privileges=specs.start_privileges(env),
        resources=specs.Resources(2**30, 0.5, 2**29, 0.25, pids_limit=1024),
        placement=ss.Placement(
            ("node.role == worker", "node.labels.big==true"), ("node.labels.rack",)
        ),
        pinned_node="n" * 25,
    )
    assert judge(create(spec)).allowed


def test_the_spawners_other_calls_are_allowed_on_its_own_service() -> None:
    ours = Found(SERVICE_ID, OURS)
    calls = {
        "GET": lambda api: api.inspect_service("berth-ada"),
        "DELETE": lambda api: api.remove_service("berth-ada"),
    }
    for method, call in calls.items():
        request = sent(call)
        assert request.method == method
        assert needs(request, LIMITS) == (Ref("service", "berth-ada"),)
        assert judge(request, {Ref("service", "berth-ada"): ours}) == Decision(
            True, target=f"/v1.41/services/{SERVICE_ID}"
        )
    logs = sent(lambda api: api.service_logs("berth-ada", stdout=True))
    assert judge(logs, {Ref("service", "berth-ada"): ours}).target.startswith(
        f"/v1.41/services/{SERVICE_ID}/logs?"
    )
    task = sent(lambda api: api.inspect_task(TASK_ID))
    assert judge(task, {Ref("task", TASK_ID): Found(TASK_ID, OURS)}) == Decision(
        True, target=f"/v1.41/tasks/{TASK_ID}"
    )
    for call in (
        lambda api: api.inspect_node("n1"),
        lambda api: api.nodes(),
        lambda a: a.version(),
    ):
        assert judge(sent(call)).allowed
    network = sent(lambda api: api.inspect_network(NETWORK))
    assert judge(network) == Decision(True, target=f"/v1.41/networks/{NETWORK}")


def test_a_task_listing_is_narrowed_to_the_one_labelled_service_it_names() -> None:
    request = sent(lambda api: api.tasks(filters={"service": "berth-ada"}))
    assert needs(request, LIMITS) == (Ref("service", "berth-ada"),)
    decision = judge(request, {Ref("service", "berth-ada"): Found(SERVICE_ID, OURS)})
    forwarded = json.dumps({"service": [SERVICE_ID]}, separators=(",", ":"))
    from urllib.parse import urlencode

    assert decision == Decision(True, target="/v1.41/tasks?" + urlencode({"filters": forwarded}))


def test_a_missing_service_or_task_is_a_404_as_from_the_engine() -> None:
    request = sent(lambda api: api.inspect_service("berth-ada"))
    assert judge(request, {Ref("service", "berth-ada"): None}) == Decision(
        True, missing=Ref("service", "berth-ada")
    )


def test_berths_own_services_and_tasks_are_not_the_hubs() -> None:
    """The hub, proxy and registry services (and their tasks) carry no berth.managed label."""
    own = Found("h" * 25, {"berth.deploy.stack": "swarm", "berth.deploy.role": "hub"})
    for name in ("berth-hub", "berth-proxy", "berth-registry"):
        for call in (
            lambda api, name=name: api.remove_service(name),
            lambda api, name=name: api.inspect_service(name),
            lambda api, name=name: api.service_logs(name, stdout=True),
            lambda api, name=name: api.tasks(filters={"service": name}),
        ):
            assert "is not Berth's" in refusal(sent(call), {Ref("service", name): own})
    assert "is not Berth's" in refusal(
        sent(lambda api: api.inspect_task(TASK_ID)), {Ref("task", TASK_ID): Found(TASK_ID, {})}
    )
    other = Found(SERVICE_ID, {**OURS, "berth.prefix": "other"})
    request = sent(lambda api: api.remove_service("other-ada"))
    assert "is not Berth's" in refusal(request, {Ref("service", "other-ada"): other})


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"label": ["berth.managed=true"]},
        {"service": ["a", "b"]},
        {"service": ["a"], "node": ["n"]},
    ],
)
def test_task_listings_beyond_one_service_are_refused(filters: dict[str, Any]) -> None:
    request = sent(lambda api: api.tasks(filters=filters))
    assert "a task listing" in refusal(request)


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda api: api.secrets(), "the hub may not call GET /secrets"),
        (lambda api: api.inspect_secret("s"), "the hub may not call GET /secrets/s"),
        (lambda api: api.create_secret("s", b"x"), "the hub may not call POST /secrets/create"),
        (lambda api: api.configs(), "the hub may not call GET /configs"),
        (lambda api: api.inspect_swarm(), "the hub may not call GET /swarm"),
        (lambda api: api.init_swarm(), "the hub may not call POST /swarm/init"),
        (lambda api: api.leave_swarm(force=True), "the hub may not call POST /swarm/leave"),
        (lambda api: api.join_swarm(["x:2377"], "t"), "the hub may not call POST /swarm/join"),
        (lambda api: api.unlock_swarm("k"), "the hub may not call POST /swarm/unlock"),
        (
            lambda api: api.update_node("n1", 1, {"Availability": "drain", "Role": "manager"}),
            "the hub may not call POST /nodes/n1/update",
        ),
        (lambda api: api.remove_node("n1", force=True), "the hub may not call DELETE /nodes/n1"),
        (
            lambda api: api.update_service("berth-hub", 1, task_template={"ContainerSpec": {}}),
            "the hub may not call POST /services/berth-hub/update",
        ),
        (lambda api: api.services(), "the hub may not call GET /services"),
        (lambda api: api.plugins(), "the hub may not call GET /plugins"),
        (lambda api: api.exec_create("berth-hub", "sh"), "the hub may not call POST /containers/"),
        (lambda api: api.containers(), "the hub may not call GET /containers/json"),
        (lambda api: api.create_volume("v"), "the hub may not call POST /volumes/create"),
        (lambda api: api.pull("debian"), "the hub may not call POST /images/create"),
        (lambda api: api.info(), "the hub may not call GET /info"),
        (lambda api: api.inspect_network("ingress"), "network 'ingress' is not one the hub may"),
    ],
)
def test_everything_else_of_the_swarm_is_refused(call: Any, reason: str) -> None:
    assert refusal(sent(call)).startswith(reason)


def test_a_single_engine_guard_allows_no_services() -> None:
    single = Limits(PREFIX, networks=(NETWORK,))
    decision = decide(create(), single, {})
    assert decision == Decision(False, "the hub may not call POST /services/create")


def test_shared_volumes_get_exactly_the_configured_driver_and_options() -> None:
    """volume_policy 'shared' (NFS through the local driver): the spawner's DriverConfig is
    allowed when the guard was given the same driver and options; any other is refused."""
    nfs = (("type", "nfs"), ("o", "addr=10.0.0.5,rw"), ("device", ":/export/{username}"))
    shared = Limits(
        PREFIX,
        networks=(NETWORK,),
        swarm=SwarmLimits(**{**SWARM.__dict__, "volume_driver": "local", "volume_options": nfs}),
    )
    options = {"type": "nfs", "o": "addr=10.0.0.5,rw", "device": ":/export/ada"}
    spec = service_spec(volume_driver=ss.VolumeDriver("local", options))
    assert decide(create(spec), shared, {}).allowed
    bobs = service_spec(volume_driver=ss.VolumeDriver("local", {**options, "device": ":/export"}))
    assert decide(create(bobs), shared, {}).reason == (
        "a volume's DriverConfig must be the configured driver and options"
    )
    assert decide(create(), shared, {}).reason == "volumes must use the driver 'local'"
    assert refusal(create(spec)) == (
        "a volume's DriverConfig must be the configured driver and options"
    )


# -- generated: any field the builder never writes is refused, wherever it is put -------------

STRUCTS = {  # where in the spawner's body, and the fields allowed there (folded)
    (): services.SERVICE_FIELDS,
    ("TaskTemplate",): services.TASK_FIELDS,
    ("TaskTemplate", "ContainerSpec"): services.CONTAINER_FIELDS,
    ("TaskTemplate", "ContainerSpec", "Mounts", 0): services.MOUNT_FIELDS,
    ("TaskTemplate", "ContainerSpec", "Mounts", 0, "VolumeOptions"): (
        services.VOLUME_OPTION_FIELDS
    ),
    ("TaskTemplate", "Resources", "Limits"): services.LIMIT_FIELDS,
    ("TaskTemplate", "Placement"): services.PLACEMENT_FIELDS,
}


@settings(max_examples=150, deadline=None)
@given(
    where=st.sampled_from(sorted(STRUCTS, key=len)),
    key=st.text(
        st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=1
    ),
    value=st.one_of(st.booleans(), st.integers(), st.text(max_size=5), st.just({"x": 1})),
)
def test_any_field_the_builder_never_writes_is_refused(where: tuple, key: str, value: Any) -> None:
    assume(key.lower() not in STRUCTS[where])

    def add(body: dict[str, Any]) -> None:
        target: Any = body
        for step in where:
            target = target[step]
        if key.lower() in {k.lower() for k in target}:  # the same field in another spelling
            return
        target[key] = value

    request = edited(add)
    if request.body == create().body:
        return
    assert not judge(request).allowed


NAMED = Limits(
    PREFIX,
    networks=(NETWORK,),
    swarm=replace(SWARM, volume_templates=("berth-user-{username}{server_suffix}",)),
)


def named_server(server: str, volume: str, user: str = "ada") -> Request:
    """What the Swarm spawner builds for ``user``'s named server ``server`` (servers.named)."""
    identity = specs.Identity(username=user, servername=server, prefix=PREFIX)
    suffix = f"_{names.escape(server)}" if server else ""
    spec = service_spec(
        name=f"berth-{names.escape(user)}{suffix}",
        identity=identity,
        mounts=(specs.Mount(volume, "/home/jovyan/work"),),
    )
    return create(spec)


def test_named_servers_get_their_own_volumes_and_no_one_elses() -> None:
    """servers.named on Swarm: each server's service carries its server suffix and mounts the
    volume the template gives that server; the default server's volume, a sibling's, another
    user's, and Berth's own service names stay out of reach. Fails on main before this change
    only for its first half: main refused servers.named with backend: swarm in berth.yaml."""
    gpu = named_server("gpu", "berth-user-ada_gpu")
    volume = Ref("swarm-volume", "berth-user-ada_gpu", owner="ada")
    assert needs(gpu, NAMED) == (volume,)
    assert decide(gpu, NAMED, {volume: None}).allowed
    assert decide(named_server("", "berth-user-ada"), NAMED, {}).allowed  # the default's
    for server, source in [
        ("gpu", "berth-user-ada"),  # the default server's volume
        ("gpu", "berth-user-ada_cpu"),  # a sibling's
        ("", "berth-user-ada_gpu"),  # the default server taking a named one's
        ("gpu", "berth-user-bob_gpu"),  # another user's
    ]:
        decision = decide(named_server(server, source), NAMED, {})
        assert not decision.allowed and f"volume {source!r} is not one of" in decision.reason
    for reserved in SWARM.reserved_names:
        request = named_server("gpu", "berth-user-ada_gpu")
        body = json.loads(request.body)
        body["Name"] = reserved
        hostile = Request(
            request.method, request.target, request.headers, json.dumps(body).encode()
        )
        decision = decide(hostile, NAMED, {})
        assert not decision.allowed and "is not one a user's server may take" in decision.reason
