"""The engine guard against the real engine: Berth's spawner works through it, attacks do not.

The guard runs as a process (``python -m berth.guard``) on a socket in a temporary directory;
the spawner's own engine layer drives a user server's whole lifecycle through it, and each
refusal is checked twice: the answer is a 403 naming the reason, and the engine shows that
the attack did not happen. The attacks are also made from inside a container of the hub image,
as the hub's own user, since that is where a compromised hub would make them.

On main the hub mounts /var/run/docker.sock itself: every attack here would succeed there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import guard_lab
import pytest
from guard_attacks import ATTACK_SCRIPT, ATTACKS, REASONS, SECRET, create_attack
from guard_lab import (
    ENGINE_SOCKET,
    HUB_IMAGE,
    HUB_UID,
    OURS,
    PREFIX,
    absent,
    wait_for_socket,
)
from polling import wait_logged
from run_once import run_once

from berth.spawner import images, specs
from berth.spawner.engine_api import Engine
from berth.spawner.volumes import prepare_volumes

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.integration

# The guard's fixtures (guard_lab.py), for the tests below.
api, guard_socket, socket_gid = guard_lab.api, guard_lab.guard_socket, guard_lab.socket_gid


async def test_the_spawners_whole_lifecycle_works_through_the_guard(
    guard_socket: Path, docker_client: Any, berth_image: str
) -> None:
    engine = Engine(f"unix://{guard_socket}", workers=4, timeout=60)
    identity = specs.Identity(username="ada", prefix=PREFIX)
    spec = specs.ContainerSpec(
        name=f"{PREFIX}-ada",
        image=berth_image,
        identity=identity,
        mounts=(specs.Mount(f"{PREFIX}-ada", "/home/jovyan/work"),),
        command=["sh", "-c", "echo server up; exec sleep 60"],
    )
    events: list[dict[str, Any]] = []
    info = await images.ensure_image(engine, berth_image, "ifnotpresent", events.append)
    created = await prepare_volumes(engine, spec, info, 60, events.append, logging.getLogger())
    assert created == [f"{PREFIX}-ada"]  # volume create + the volume-init container ran
    assert docker_client.volumes.get(f"{PREFIX}-ada").attrs["Labels"]["berth.prefix"] == PREFIX

    container_id = await engine.create_container(specs.container_create_kwargs(spec))
    await engine.start_container(container_id)
    record = await engine.inspect_container(f"{PREFIX}-ada")
    assert record is not None and record["Id"] == container_id and record["State"]["Running"]
    status, output = await engine.exec_run(
        container_id, ["sh", "-c", "stat -c %u /home/jovyan/work; id -u"]
    )
    assert (status, output) == (0, "1000\n1000\n")  # the volume-init chown happened
    # start.sh runs its hooks before the command prints; a loaded machine takes its time.
    deadline = time.monotonic() + 120
    while "server up" not in (tail := await engine.logs_tail(container_id)):
        assert time.monotonic() < deadline, f"no 'server up' within 120 s: {tail!r}"
        await asyncio.sleep(0.2)
    await engine.stop_container(container_id, timeout=2)
    assert await engine.wait_container(container_id, timeout=30) in {0, 137, 143}
    await engine.remove_container(container_id)
    assert await engine.inspect_container(container_id) is None
    assert absent(docker_client, f"{PREFIX}-ada")


def test_pulling_a_berth_image_is_refused_with_the_guards_reason(api: Any) -> None:
    """The spawner never asks (it refuses berth/* itself); a hub that did is refused here."""
    with pytest.raises(docker.errors.APIError, match="berth engine guard: 'berth/never-built'"):
        api.pull("berth/never-built", tag="1")


def test_a_streamed_answer_arrives_while_the_container_still_runs(
    api: Any, docker_client: Any, berth_image: str
) -> None:
    """Chunked answers are relayed as they come, not when the engine ends them."""
    name = f"{PREFIX}-stream"
    host_config = api.create_host_config(cap_drop=["ALL"], security_opt=["no-new-privileges"])
    created = api.create_container(
        berth_image,
        name=name,
        labels=OURS,
        host_config=host_config,
        entrypoint=["sh", "-c", "echo first; sleep 30; echo second"],
    )
    api.start(created["Id"])
    stream = api.logs(created["Id"], stream=True, follow=True)
    assert b"first" in next(stream)  # would block 30 s if the guard buffered the answer
    stream.close()
    api.remove_container(created["Id"], force=True)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_each_attack_is_refused_and_did_not_happen(
    api: Any, docker_client: Any, berth_image: str, attack: str
) -> None:
    name = f"{PREFIX}-{attack}"
    with pytest.raises(docker.errors.APIError) as refused:
        create_attack(api, berth_image, name, ATTACKS[attack])
    assert refused.value.status_code == 403
    assert refused.value.explanation == f"berth engine guard: {REASONS[attack]}"
    assert absent(docker_client, name)


def test_refusals_are_logged_one_line_each_without_bodies(
    api: Any, guard_socket: Path, berth_image: str
) -> None:
    """The create bodies carried an environment secret: the log names the reason, not it."""
    for attack in ATTACKS:
        with pytest.raises(docker.errors.APIError):
            create_attack(api, berth_image, f"{PREFIX}-log-{attack}", ATTACKS[attack])
    log = (guard_socket.parent / "guard.log").read_text()
    assert SECRET not in log
    for attack, reason in REASONS.items():
        assert f"refused POST /v1.41/containers/create: {reason}\n" in log, attack


def test_concurrent_calls_are_served_side_by_side(api: Any, guard_socket: Path) -> None:
    """The spawner's engine layer keeps many connections open at once (a pool per thread)."""
    clients = [
        docker.APIClient(base_url=f"unix://{guard_socket}", version="1.41") for _ in range(16)
    ]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda client: client.version()["ApiVersion"], clients * 4))
    assert answers == ["1.41"] * 64
    for client in clients:
        client.close()


def test_a_container_that_is_not_berths_cannot_be_touched(
    api: Any, docker_client: Any, berth_image: str
) -> None:
    name = f"{PREFIX}-foreign"
    foreign = docker_client.containers.run(berth_image, ["sleep", "60"], name=name, detach=True)
    for ref, call in (
        (name, lambda: api.inspect_container(name)),
        (name, lambda: api.exec_create(name, ["cat", "/etc/shadow"])),
        (name, lambda: api.stop(name, timeout=0)),
        (foreign.id, lambda: api.kill(foreign.id)),
        (foreign.id[:12], lambda: api.remove_container(foreign.id[:12], force=True)),
    ):
        with pytest.raises(docker.errors.APIError) as refused:
            call()
        assert refused.value.status_code == 403
        assert refused.value.explanation == (
            f"berth engine guard: container {ref!r} is not Berth's (it lacks the labels "
            f"berth.managed=true, berth.prefix={PREFIX})"
        )
    foreign.reload()
    assert foreign.status == "running" and not foreign.attrs["ExecIDs"]


def test_a_symlink_planted_in_an_allowed_tree_does_not_lead_out(
    api: Any, guard_socket: Path, docker_client: Any, berth_image: str
) -> None:
    """The attack on an allow-listed, writable tree: an allowed container (here: with the
    tree bound read-write, as root with Berth's root-start capabilities) plants a symlink to
    /etc in it, then a second container binds the symlink's path. The engine would follow it."""
    shared = guard_socket.parent / "shared"
    planter = api.create_container(
        berth_image,
        name=f"{PREFIX}-planter",
        labels=OURS,
        user="root",
        entrypoint=["/bin/ln", "-s", "/etc", "/shared/escape"],
        host_config=api.create_host_config(
            cap_drop=["ALL"], cap_add=["CHOWN", "SETUID"], binds=[f"{shared}:/shared:rw"]
        ),
    )
    api.start(planter["Id"])
    assert api.wait(planter["Id"], timeout=60)["StatusCode"] == 0
    api.remove_container(planter["Id"], force=True)
    assert (shared / "escape").is_symlink()  # the plant worked: the check below matters

    name = f"{PREFIX}-through-symlink"
    with pytest.raises(docker.errors.APIError) as refused:
        api.create_container(
            berth_image,
            name=name,
            labels=OURS,
            host_config=api.create_host_config(
                cap_drop=["ALL"], binds=[f"{shared}/escape:/host-etc:ro"]
            ),
        )
    assert refused.value.status_code == 403
    assert "(a symbolic link), outside the allowed paths" in refused.value.explanation
    assert absent(docker_client, name)


def test_a_bind_volume_through_driver_options_is_refused(api: Any, docker_client: Any) -> None:
    name = f"{PREFIX}-etc"
    with pytest.raises(docker.errors.APIError, match="volume DriverOpts are not allowed"):
        api.create_volume(
            name, labels=OURS, driver_opts={"type": "none", "o": "bind", "device": "/etc"}
        )
    assert not docker_client.volumes.list(filters={"name": name})


def _hub_image_or_skip(client: Any) -> None:
    try:
        client.images.get(HUB_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{HUB_IMAGE} is not built")


def test_attacks_from_inside_the_hub_container_are_refused(
    guard_socket: Path, docker_client: Any, berth_image: str, socket_gid: int
) -> None:
    """The hub image's own user, with the socket's group as `berth up` grants it."""
    _hub_image_or_skip(docker_client)
    output = run_once(
        docker_client,
        HUB_IMAGE,
        [
            "python3",
            "-c",
            ATTACK_SCRIPT,
            json.dumps(ATTACKS),
            berth_image,
            PREFIX,
            json.dumps(OURS),
        ],
        entrypoint=[],
        name=f"{PREFIX}-hub-attacker",
        user=f"{HUB_UID}:100",
        group_add=[str(socket_gid)],
        volumes={str(guard_socket.parent): {"bind": "/run/berth-engine", "mode": "ro"}},
        network_mode="none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
    )
    results = json.loads(output.decode().strip().splitlines()[-1])
    assert results == {
        key: [403, f"berth engine guard: {reason}"] for key, reason in REASONS.items()
    }
    for key in ATTACKS:
        assert absent(docker_client, f"{PREFIX}-hub-{key}")


def test_the_socket_is_closed_to_users_outside_its_group(
    guard_socket: Path, docker_client: Any
) -> None:
    _hub_image_or_skip(docker_client)
    assert guard_socket.stat().st_mode & 0o777 == 0o660
    script = (
        "import docker\n"
        "try:\n"
        "    url = 'unix:///run/berth-engine/docker.sock'\n"
        "    docker.APIClient(base_url=url, version='1.41').ping()\n"
        "    print('connected')\n"
        "except Exception as exc:\n"
        "    print('refused', 'Permission denied' in str(exc))\n"
    )
    output = run_once(
        docker_client,
        HUB_IMAGE,
        ["python3", "-c", script],
        entrypoint=[],
        name=f"{PREFIX}-outsider",
        user=f"{HUB_UID}:100",
        volumes={str(guard_socket.parent): {"bind": "/run/berth-engine", "mode": "ro"}},
        network_mode="none",
    )
    assert output.decode().strip().splitlines()[-1] == "refused True"


def _hub_image_has_the_guard(client: Any) -> bool:
    try:
        run_once(
            client,
            HUB_IMAGE,
            ["python3", "-c", "import berth.guard.server, berth.guard.health"],
            entrypoint=[],
            network_mode="none",
        )
    except docker.errors.ContainerError:
        return False
    return True


def test_the_guard_runs_unprivileged_from_the_hub_image(
    tmp_path_factory: pytest.TempPathFactory, docker_client: Any, berth_image: str, socket_gid: int
) -> None:
    """As `berth up` runs it: the hub image's user with the engine socket's group, no caps."""
    _hub_image_or_skip(docker_client)
    if not _hub_image_has_the_guard(docker_client):
        pytest.skip(f"{HUB_IMAGE} predates the engine guard (rebuild it: berth images build hub)")
    workdir = tmp_path_factory.mktemp("guard-in-hub")
    os.chown(workdir, HUB_UID, socket_gid)
    workdir.chmod(0o750)
    guard = docker_client.containers.run(
        HUB_IMAGE,
        ["python3", "-m", "berth.guard", "--socket", "/run/berth-engine/docker.sock",
         "--upstream", "unix:///var/run/docker.sock", "--prefix", PREFIX, "--network", "bridge"],
        name=f"{PREFIX}-guard",
        user=f"{HUB_UID}:{socket_gid}",
        volumes={
            ENGINE_SOCKET: {"bind": "/var/run/docker.sock", "mode": "rw"},
            str(workdir): {"bind": "/run/berth-engine", "mode": "rw"},
        },
        network_mode="none",
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        detach=True,
    )  # fmt: skip
    try:
        wait_for_socket(workdir / "docker.sock", None, 30)
        info = (workdir / "docker.sock").stat()
        assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (HUB_UID, socket_gid, 0o660)
        assert guard.exec_run(["python3", "-m", "berth.guard.health"]).exit_code == 0
        api = docker.APIClient(base_url=f"unix://{workdir}/docker.sock", version="auto")
        name = f"{PREFIX}-via-hub-guard"
        created = api.create_container(
            berth_image,
            name=name,
            labels=OURS,
            command=["sleep", "60"],
            host_config=api.create_host_config(cap_drop=["ALL"]),
        )
        api.start(created["Id"])
        exec_id = api.exec_create(created["Id"], ["id", "-u"])
        assert api.exec_start(exec_id) == b"1000\n"
        api.remove_container(created["Id"], force=True)
        with pytest.raises(docker.errors.APIError, match="privileged containers are not allowed"):
            create_attack(api, berth_image, f"{name}-privileged", ATTACKS["privileged"])
        assert absent(docker_client, f"{name}-privileged")
        api.close()
        # The guard logs a refusal before it answers, but the engine copies a container's
        # output into its log on its own time: read until the line is there.
        wait_logged(guard, "refused POST /v1.41/containers/create: privileged containers", 30)
    finally:
        print(guard.logs().decode())
        guard.remove(force=True)
