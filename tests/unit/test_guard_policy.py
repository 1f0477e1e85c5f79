"""The engine guard's policy as pure functions, on the requests docker-py really sends.

Every refusal is an attack the hub could make with the raw engine socket it had before the
guard (on main, `berth up` mounts /var/run/docker.sock into the hub: each of these requests
would have been carried out).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from guard_policy_cases import (
    CID,
    EXEC_ID,
    IDENTITY,
    LIMITS,
    OURS,
    PREFIX,
    judge,
    refusal,
    spawner_kwargs,
    volume_facts,
)
from guard_requests import create_container, sent

from berth.guard import bodies
from berth.guard.bodies import ALLOWED_CAPS
from berth.guard.policy import Decision, Found, Ref, needs
from berth.spawner import specs
from berth.spawner.volumes import volume_create_kwargs, volume_init_kwargs

# -- what the spawner sends is allowed -------------------------------------------------------


def test_spawner_user_container_is_allowed_once_its_volume_is_berths() -> None:
    request = create_container(spawner_kwargs())
    assert needs(request, LIMITS) == (Ref("volume", f"{PREFIX}-ada"),)
    assert judge(request, volume_facts(f"{PREFIX}-ada")) == Decision(
        True, target=f"/v1.41/containers/create?name={PREFIX}-ada"
    )


def test_spawner_root_start_with_grant_sudo_network_and_limits_is_allowed() -> None:
    env = {"GRANT_SUDO": "yes", "NB_UID": "1234"}
    request = create_container(
        spawner_kwargs(
            environment=env,
            privileges=specs.start_privileges(env),
            resources=specs.Resources(mem_limit=2**30, cpu_limit=1.5, cpu_guarantee=0.5),
            networking=specs.Networking(network_name="berth-net", use_internal_ip=True),
        )
    )
    body = json.loads(request.body)
    assert sorted(body["HostConfig"]["CapAdd"]) == [
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID"
    ]  # fmt: skip
    assert judge(request, volume_facts(f"{PREFIX}-ada")).allowed


def test_spawner_host_path_mount_under_an_allowed_bind_is_allowed() -> None:
    mount = specs.Mount("/srv/berth-shared/ada", "/home/jovyan/shared", read_only=True)
    request = create_container(spawner_kwargs(mounts=(mount,)))
    assert needs(request, LIMITS) == (Ref("hostpath", "/srv/berth-shared/ada"),)
    assert judge(request, {Ref("hostpath", "/srv/berth-shared/ada"): None}).allowed  # unseen
    seen = Found("/srv/berth-shared/ada", {})
    assert judge(request, {Ref("hostpath", "/srv/berth-shared/ada"): seen}).allowed


def test_a_symlink_under_an_allowed_bind_that_leads_out_is_refused() -> None:
    """A container that can write into an allowed tree plants ada -> /etc; the next bind of
    /srv/berth-shared/ada would mount the host's /etc (the engine follows the link)."""
    mount = specs.Mount("/srv/berth-shared/ada", "/home/jovyan/shared")
    request = create_container(spawner_kwargs(mounts=(mount,)))
    facts = {Ref("hostpath", "/srv/berth-shared/ada"): Found("/etc", {})}
    assert refusal(request, facts) == (
        "host path '/srv/berth-shared/ada' leads to '/etc' (a symbolic link), outside the "
        "allowed paths"
    )


def test_volume_init_container_and_volume_create_are_allowed() -> None:
    init = create_container(
        volume_init_kwargs("berth/base-notebook", f"{PREFIX}-ada", "/home/jovyan", "1000", IDENTITY)
    )
    assert judge(init, volume_facts(f"{PREFIX}-ada")).allowed
    create = sent(lambda api: api.create_volume(**volume_create_kwargs(f"{PREFIX}-ada", IDENTITY)))
    assert judge(create) == Decision(True, target="/v1.41/volumes/create")


def test_the_guards_constants_are_the_spawners() -> None:
    """The guard copies them to stay free of JupyterHub; a change in specs must reach it."""
    init = volume_init_kwargs("img", "vol", "/t", "", IDENTITY)
    assert tuple(init["host_config"]["cap_add"]) == bodies.VOLUME_INIT_CAPS
    assert init["host_config"]["security_opt"] == [bodies.NO_NEW_PRIVILEGES]
    assert (bodies.ROOT_START_CAPS, bodies.GRANT_SUDO_EXTRA_CAPS) == (
        specs.ROOT_START_CAPS,
        specs.GRANT_SUDO_EXTRA_CAPS,
    )
    assert {"SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH", "ALL"}.isdisjoint(
        ALLOWED_CAPS
    )


@pytest.mark.parametrize(
    ("call", "target"),
    [
        (lambda api: api.inspect_container(f"{PREFIX}-ada"), f"/v1.41/containers/{CID}/json"),
        (lambda api: api.start(f"{PREFIX}-ada"), f"/v1.41/containers/{CID}/start"),
        (lambda api: api.stop(f"{PREFIX}-ada", timeout=3), f"/v1.41/containers/{CID}/stop?t=3"),
        (lambda api: api.kill(f"{PREFIX}-ada"), f"/v1.41/containers/{CID}/kill"),
        (lambda api: api.wait(f"{PREFIX}-ada"), f"/v1.41/containers/{CID}/wait"),
        (
            lambda api: api.remove_container(f"{PREFIX}-ada", v=False, force=True),
            f"/v1.41/containers/{CID}?v=False&link=False&force=True",
        ),
        (
            lambda api: api.logs(f"{PREFIX}-ada", tail=20),
            f"/v1.41/containers/{CID}/logs?stderr=1&stdout=1&timestamps=0&follow=0&tail=20",
        ),
        (lambda api: api.exec_create(f"{PREFIX}-ada", ["id"]), f"/v1.41/containers/{CID}/exec"),
    ],
)
def test_operations_on_berths_container_are_pinned_to_its_id(call: Any, target: str) -> None:
    request = sent(call)
    assert needs(request, LIMITS) == (Ref("container", f"{PREFIX}-ada"),)
    facts = {Ref("container", f"{PREFIX}-ada"): Found(CID, OURS)}
    assert judge(request, facts) == Decision(True, target=target)


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.exec_start(EXEC_ID),
        lambda api: api.exec_inspect(EXEC_ID),
        lambda api: api.exec_resize(EXEC_ID, height=20, width=80),
    ],
)
def test_exec_calls_follow_their_containers_labels(call: Any) -> None:
    request = sent(call)
    assert needs(request, LIMITS) == (Ref("exec", EXEC_ID),)
    assert judge(request, {Ref("exec", EXEC_ID): Found(EXEC_ID, OURS)}).allowed
    foreign = judge(request, {Ref("exec", EXEC_ID): Found(EXEC_ID, {"app": "db"})})
    assert not foreign.allowed and "not Berth's" in foreign.reason


def test_exec_start_keeps_its_upgrade_headers() -> None:
    request = sent(lambda api: api.exec_start(EXEC_ID))
    assert (request.headers["connection"], request.headers["upgrade"]) == ("Upgrade", "tcp")


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.ping(),
        lambda api: api.version(),
        lambda api: api.inspect_image("berth/base-notebook:latest"),
        lambda api: api.inspect_image("quay.io/jupyter/base-notebook@sha256:" + "a" * 64),
        lambda api: api.pull("alpine", tag="3.20"),
        lambda api: api.inspect_network("berth-net"),
    ],
)
def test_read_only_and_pull_calls_need_no_look_up(call: Any) -> None:
    request = sent(call)
    assert needs(request, LIMITS) == ()
    assert judge(request) == Decision(True, target=request.target)


def test_missing_objects_are_answered_not_found() -> None:
    request = sent(lambda api: api.inspect_container(f"{PREFIX}-gone"))
    gone = Ref("container", f"{PREFIX}-gone")
    assert judge(request, {gone: None}) == Decision(True, missing=gone)


def test_network_connect_needs_an_allowed_network_and_berths_container() -> None:
    request = sent(lambda api: api.connect_container_to_network(f"{PREFIX}-ada", "berth-net"))
    assert needs(request, LIMITS) == (Ref("container", f"{PREFIX}-ada"),)
    assert judge(request, {Ref("container", f"{PREFIX}-ada"): Found(CID, OURS)}).allowed
    assert "not Berth's" in refusal(request, {Ref("container", f"{PREFIX}-ada"): Found(CID, {})})
    other = sent(lambda api: api.connect_container_to_network(f"{PREFIX}-ada", "corp-db"))
    assert refusal(other) == "network 'corp-db' is not one the hub may use"


# -- operating on what is not Berth's ---------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.inspect_container("postgres"),
        lambda api: api.stop("postgres"),
        lambda api: api.remove_container("postgres", force=True),
        lambda api: api.exec_create("postgres", ["cat", "/etc/shadow"]),
        lambda api: api.logs("postgres"),
    ],
)
def test_foreign_containers_are_refused(call: Any) -> None:
    request = sent(call)
    facts = {Ref("container", "postgres"): Found(CID, {"com.example": "db"})}
    assert refusal(request, facts) == (
        "container 'postgres' is not Berth's (it lacks the labels berth.managed=true, "
        f"berth.prefix={PREFIX})"
    )


def test_another_deployments_container_is_refused() -> None:
    request = sent(lambda api: api.stop("berth-other-ada"))
    labels = {specs.LABEL_MANAGED: "true", specs.LABEL_PREFIX: "berth-other"}
    assert not judge(request, {Ref("container", "berth-other-ada"): Found(CID, labels)}).allowed


def test_foreign_volume_inspect_is_refused() -> None:
    request = sent(lambda api: api.inspect_volume("postgres-data"))
    assert "not Berth's" in refusal(request, volume_facts("postgres-data", labels={}))
