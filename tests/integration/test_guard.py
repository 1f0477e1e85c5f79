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
import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from berth.spawner import images, specs
from berth.spawner.engine_api import Engine
from berth.spawner.volumes import prepare_volumes

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.integration

RUN = uuid.uuid4().hex[:8]
PREFIX = f"berth-guard-{RUN}"
HUB_IMAGE = "berth/hub:latest"
# The engine under test (DOCKER_HOST: Podman's socket under `scripts/test.sh --engine podman`).
ENGINE_SOCKET = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock").removeprefix("unix://")
HUB_UID = 1000


def _wait_for_socket(path: Path, process: subprocess.Popen[bytes] | None, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.is_socket():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the guard exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no guard socket at {path} after {seconds}s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def socket_gid() -> int:
    return os.stat(ENGINE_SOCKET).st_gid


@pytest.fixture(scope="module")
def guard_socket(
    tmp_path_factory: pytest.TempPathFactory, docker_client: Any, socket_gid: int
) -> Iterator[Path]:
    """A guard process for PREFIX, allowing the bridge network and one shared host directory."""
    workdir = tmp_path_factory.mktemp("guard")
    workdir.chmod(0o755)  # the hub container's user only needs to reach the socket
    (workdir / "shared").mkdir()
    socket_path = workdir / "docker.sock"
    log_path = workdir / "guard.log"
    argv = [
        sys.executable, "-m", "berth.guard", "--socket", str(socket_path), "--prefix", PREFIX,
        "--network", "bridge", "--allow-bind", str(workdir / "shared"),
        "--upstream", f"unix://{ENGINE_SOCKET}",
    ]  # fmt: skip
    with log_path.open("wb") as log_file:
        # The socket group is the engine socket's, as the hub container gets it via group_add.
        process = subprocess.Popen(
            argv, stdout=log_file, stderr=subprocess.STDOUT, group=socket_gid
        )
    try:
        _wait_for_socket(socket_path, process, 30)
        yield socket_path
    finally:
        process.terminate()
        process.wait(timeout=10)
        _remove_test_objects(docker_client)
        print(log_path.read_text())


def _remove_test_objects(client: Any) -> None:
    for container in client.containers.list(all=True, filters={"name": f"berth-guard-{RUN}"}):
        container.remove(force=True)
    for volume in client.volumes.list(filters={"name": f"berth-guard-{RUN}"}):
        volume.remove(force=True)


@pytest.fixture()
def api(guard_socket: Path) -> Iterator[Any]:
    client = docker.APIClient(base_url=f"unix://{guard_socket}", version="auto", timeout=60)
    yield client
    client.close()


def _absent(client: Any, name: str) -> bool:
    # "^name$", not "^/name$": Podman matches names without the leading slash (Docker both).
    return not client.containers.list(all=True, filters={"name": f"^{name}$"})


OURS = {specs.LABEL_MANAGED: "true", specs.LABEL_PREFIX: PREFIX}


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
    for _ in range(100):  # start.sh runs its hooks before the command prints (bounded: 10 s)
        if "server up" in await engine.logs_tail(container_id):
            break
        await asyncio.sleep(0.1)
    assert "server up" in await engine.logs_tail(container_id)
    await engine.stop_container(container_id, timeout=2)
    assert await engine.wait_container(container_id, timeout=30) in {0, 137, 143}
    await engine.remove_container(container_id)
    assert await engine.inspect_container(container_id) is None
    assert _absent(docker_client, f"{PREFIX}-ada")


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


ATTACKS: dict[str, dict[str, Any]] = {
    "privileged": {"host_config": {"privileged": True}},
    "cap-sys-admin": {"host_config": {"cap_add": ["SYS_ADMIN"]}},
    "net-host": {"host_config": {"network_mode": "host"}},
    "pid-host": {"host_config": {"pid_mode": "host"}},
    "ipc-host": {"host_config": {"ipc_mode": "host"}},
    "bind-root": {"host_config": {"binds": ["/:/host"]}},
    "bind-etc": {"host_config": {"binds": ["/etc:/host-etc:ro"]}},
    "bind-socket": {"host_config": {"binds": ["/var/run/docker.sock:/var/run/docker.sock"]}},
    "unlabelled": {"labels": {}},
}
REASONS = {
    "privileged": "privileged containers are not allowed",
    "cap-sys-admin": "capabilities SYS_ADMIN are not allowed (CapAdd)",
    "net-host": "network mode 'host' shares a namespace outside the container",
    "pid-host": "pidmode 'host' is not allowed (only the container's own namespace)",
    "ipc-host": "ipcmode 'host' is not allowed (only the container's own namespace)",
    "bind-root": "bind mount of host path '/' is not allowed",
    "bind-etc": "bind mount of host path '/etc' is not allowed",
    "bind-socket": "bind mount of host path '/var/run/docker.sock' is not allowed",
    "unlabelled": f"containers must carry the labels berth.managed=true and berth.prefix={PREFIX}",
}


SECRET = f"s3cret-{RUN}"


def _attack(api: Any, image: str, name: str, attack: dict[str, Any]) -> Any:
    host_config = {"cap_drop": ["ALL"], **attack.get("host_config", {})}
    return api.create_container(
        image,
        name=name,
        labels=attack.get("labels", OURS),
        host_config=api.create_host_config(**host_config),
        command=["sleep", "60"],
        environment={"BERTH_GUARD_TEST_SECRET": SECRET},
    )


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_each_attack_is_refused_and_did_not_happen(
    api: Any, docker_client: Any, berth_image: str, attack: str
) -> None:
    name = f"{PREFIX}-{attack}"
    with pytest.raises(docker.errors.APIError) as refused:
        _attack(api, berth_image, name, ATTACKS[attack])
    assert refused.value.status_code == 403
    assert refused.value.explanation == f"berth engine guard: {REASONS[attack]}"
    assert _absent(docker_client, name)


def test_refusals_are_logged_one_line_each_without_bodies(
    api: Any, guard_socket: Path, berth_image: str
) -> None:
    """The create bodies carried an environment secret: the log names the reason, not it."""
    for attack in ATTACKS:
        with pytest.raises(docker.errors.APIError):
            _attack(api, berth_image, f"{PREFIX}-log-{attack}", ATTACKS[attack])
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
    assert _absent(docker_client, name)


def test_a_bind_volume_through_driver_options_is_refused(api: Any, docker_client: Any) -> None:
    name = f"{PREFIX}-etc"
    with pytest.raises(docker.errors.APIError, match="volume DriverOpts are not allowed"):
        api.create_volume(
            name, labels=OURS, driver_opts={"type": "none", "o": "bind", "device": "/etc"}
        )
    assert not docker_client.volumes.list(filters={"name": name})


def _raw_exchange(socket_path: Path, data: bytes, seconds: float = 10) -> bytes:
    """Send raw bytes to the guard; everything it answers until it closes or goes quiet."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(seconds)
        sock.connect(str(socket_path))
        sock.sendall(data)
        answer = b""
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(65536):
                answer += chunk
                if answer.count(b"HTTP/1.1 ") >= 2:
                    sock.settimeout(1)  # all expected answers are in: stop soon
        return answer


def _privileged_create_body(image: str) -> bytes:
    host_config = {"CapDrop": ["ALL"], "Privileged": True}
    return json.dumps({"Image": image, "Labels": OURS, "HostConfig": host_config}).encode()


def test_a_pipelined_request_is_judged_on_its_own(
    guard_socket: Path, docker_client: Any, berth_image: str
) -> None:
    """An allowed request carrying a second one behind it in the same write."""
    name = f"{PREFIX}-pipelined"
    body = _privileged_create_body(berth_image)
    data = (
        b"GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
        + f"POST /v1.41/containers/create?name={name} HTTP/1.1\r\nHost: docker\r\n".encode()
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    answer = _raw_exchange(guard_socket, data)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert b"HTTP/1.1 403 " in answer and b"privileged containers are not allowed" in answer
    assert _absent(docker_client, name)


def test_ambiguous_framing_reaches_nothing(
    guard_socket: Path, docker_client: Any, berth_image: str
) -> None:
    """Content-Length and Transfer-Encoding together, the classic request-smuggling shape: the
    chunked body hides a second request. The guard frames by Transfer-Encoding (as RFC 9112 and
    the engine do) and sends the engine a request it re-serialized, so the hidden request stays
    a body and is never a request of its own."""
    name = f"{PREFIX}-smuggled"
    body = _privileged_create_body(berth_image)
    smuggled = (
        f"POST /v1.41/containers/create?name={name} HTTP/1.1\r\nHost: docker\r\n".encode()
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    chunk = f"{len(smuggled):x}\r\n".encode() + smuggled + b"\r\n0\r\n\r\n"
    data = (
        b"POST /v1.41/containers/x/wait HTTP/1.1\r\nHost: docker\r\n"
        + b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunk
    )
    answer = _raw_exchange(guard_socket, data, seconds=3)
    assert answer.count(b"HTTP/1.1 ") == 1  # one request, one answer: nothing hidden ran
    assert b"POST /containers/x/wait takes no request body" in answer
    assert _absent(docker_client, name)


def _hub_image_or_skip(client: Any) -> None:
    try:
        client.images.get(HUB_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{HUB_IMAGE} is not built")


ATTACK_SCRIPT = """
import json, sys, docker
api = docker.APIClient(base_url="unix:///run/berth-engine/docker.sock", version="auto")
results = {}
for key, attack in json.loads(sys.argv[1]).items():
    host_config = {"cap_drop": ["ALL"], **attack.get("host_config", {})}
    try:
        api.create_container(sys.argv[2], name=sys.argv[3] + "-hub-" + key,
            labels=attack.get("labels", json.loads(sys.argv[4])),
            host_config=api.create_host_config(**host_config), command=["sleep", "60"])
        results[key] = [201, ""]
    except docker.errors.APIError as exc:
        results[key] = [exc.status_code, exc.explanation]
print(json.dumps(results))
"""


def test_attacks_from_inside_the_hub_container_are_refused(
    guard_socket: Path, docker_client: Any, berth_image: str, socket_gid: int
) -> None:
    """The hub image's own user, with the socket's group as `berth up` grants it."""
    _hub_image_or_skip(docker_client)
    output = docker_client.containers.run(
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
        remove=True,
    )
    results = json.loads(output.decode().strip().splitlines()[-1])
    assert results == {
        key: [403, f"berth engine guard: {reason}"] for key, reason in REASONS.items()
    }
    for key in ATTACKS:
        assert _absent(docker_client, f"{PREFIX}-hub-{key}")


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
    output = docker_client.containers.run(
        HUB_IMAGE,
        ["python3", "-c", script],
        entrypoint=[],
        name=f"{PREFIX}-outsider",
        user=f"{HUB_UID}:100",
        volumes={str(guard_socket.parent): {"bind": "/run/berth-engine", "mode": "ro"}},
        network_mode="none",
        remove=True,
    )
    assert output.decode().strip().splitlines()[-1] == "refused True"


def _hub_image_has_the_guard(client: Any) -> bool:
    try:
        client.containers.run(
            HUB_IMAGE,
            ["python3", "-c", "import berth.guard.server, berth.guard.health"],
            entrypoint=[],
            network_mode="none",
            remove=True,
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
        _wait_for_socket(workdir / "docker.sock", None, 30)
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
            _attack(api, berth_image, f"{name}-privileged", ATTACKS["privileged"])
        assert _absent(docker_client, f"{name}-privileged")
        api.close()
        logs = guard.logs().decode()
        assert "refused POST /v1.41/containers/create: privileged containers" in logs
    finally:
        print(guard.logs().decode())
        guard.remove(force=True)


def test_host_settings_smuggled_past_the_host_config_are_refused(
    api: Any, guard_socket: Path, docker_client: Any, berth_image: str
) -> None:
    """Two ways the engine takes host settings from outside a create's HostConfig: the top
    level of the create body (when HostConfig is absent), and the body of a container start
    on an API version below 1.24. Both made a privileged container with / bound on a raw socket."""
    name = f"{PREFIX}-toplevel"
    body = json.dumps(
        {"Image": berth_image, "Labels": OURS, "Privileged": True, "Binds": ["/:/host"]}
    ).encode()
    answer = _raw_exchange(
        guard_socket,
        f"POST /v1.41/containers/create?name={name} HTTP/1.1\r\nHost: docker\r\n".encode()
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body,
        seconds=3,
    )
    assert answer.startswith(b"HTTP/1.1 403 ") and b"containers need a HostConfig" in answer
    assert _absent(docker_client, name)

    created = api.create_container(
        berth_image,
        name=f"{PREFIX}-oldstart",
        labels=OURS,
        command=["sleep", "60"],
        host_config=api.create_host_config(cap_drop=["ALL"]),
    )
    start_body = json.dumps({"Privileged": True, "Binds": ["/:/host"]}).encode()
    for version in ("1.23", "1.41"):
        answer = _raw_exchange(
            guard_socket,
            f"POST /v{version}/containers/{created['Id']}/start HTTP/1.1\r\n".encode()
            + b"Host: docker\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(start_body)}\r\n\r\n".encode()
            + start_body,
            seconds=3,
        )
        assert answer.startswith(b"HTTP/1.1 403 ")
    container = docker_client.containers.get(created["Id"])
    assert container.status == "created" and not container.attrs["HostConfig"]["Privileged"]
    api.remove_container(created["Id"], force=True)


def test_conflicting_lengths_are_a_bad_request(guard_socket: Path) -> None:
    data = (
        b"POST /v1.41/volumes/create HTTP/1.1\r\nHost: docker\r\n"
        b"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}"
    )
    answer = _raw_exchange(guard_socket, data, seconds=3)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"berth engine guard: bad request" in answer
