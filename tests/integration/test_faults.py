"""Faults against a real `berth up` deployment: each one loses nothing and spares the others.

- the hub SIGKILLed with five spawns in flight: afterwards every server is running and
  reachable, or cleanly gone (no container left, a new start works); nothing stays "pending";
- one user runs out of memory, fork-bombs, or fills their volume: the others keep working, the
  hub answers throughout, and its database stays intact;
- the filesystem holding the hub's own database fills up while it serves: logins, a spawn and
  an admin API call fail cleanly or succeed, the hub keeps answering, and once space is back
  the database is intact, nothing made before is lost, and logins and spawns work again;
- (full tier) dockerd restarts with 20 servers running: all 20 keep running and answer.

Limits these tests rely on: `limits.memory` (berth.yaml) bounds every user server; a fork bomb
also needs a PIDs limit: `limits.pids` when berth.yaml has that key, otherwise the test sets one
on the bomber's container through the engine API before the bomb goes off (never a bomb on an
unlimited container: the machine's PID table is shared).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
from deployment import PREFIX, Deployment, deployment
from hub_users import BrowserUser, HubWatcher, add_user
from kernel_client import KernelClient
from websocket import WebSocketException

from berth.config.schema import LimitsConfig, StorageConfig

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NO_LIVE_RESTORE = (
    "the engine runs without live-restore: scripts/start-dockerd.sh writes it only when "
    '/etc/docker/daemon.json is absent; add "live-restore": true to that file'
)
MEMORY_LIMIT = "768M"
PIDS_LIMIT = 256
HAS_PIDS_KEY = "pids" in LimitsConfig.model_fields
BYSTANDER = "bystander"
MOUNT_POINT = StorageConfig().mount_point  # where the user's volume is (the kernel's cwd is not)
# Writes into the volume until it is full. Guarded: it refuses to write into anything bigger
# than the small test volume (an overlay root would fill the host's disk), and stops at 128 MiB.
FILL_VOLUME = """
import errno, os
size = os.statvfs('{mount}').f_blocks * os.statvfs('{mount}').f_frsize
assert size <= 128 * 2**20, f'{mount} holds {{size}} bytes: not the 64 MiB test volume'
try:
    with open('{mount}/ballast', 'wb', buffering=0) as f:
        for _ in range(128):
            f.write(bytes(2**20))
    print('never full')
except OSError as e:
    print(e.errno == errno.ENOSPC)
"""
HUB_DATA_SIZE = 64 * 2**20
HUB_DATABASE = "/srv/berth/data/jupyterhub.sqlite"
HUB_FILLER = "/srv/berth/data/filler"
# The same fill, in the hub's data directory, as the hub's own user (exec's default user).
FILL_HUB_DATA = FILL_VOLUME.replace("{mount}/ballast", HUB_FILLER).replace(
    "{mount}", "/srv/berth/data"
)


@pytest.fixture(scope="module")
def engine() -> Iterator[docker.DockerClient]:
    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    limits: dict[str, Any] = {"memory": MEMORY_LIMIT}
    if HAS_PIDS_KEY:
        limits["pids"] = PIDS_LIMIT
    with deployment(tmp_path_factory.mktemp("faults"), {"limits": limits}) as running:
        yield running


@pytest.fixture(scope="module")
def bystander(dep: Deployment) -> str:
    """A user whose server runs through the faults of the others and must keep working."""
    create_users(dep, [BYSTANDER])
    dep.start_server(BYSTANDER)
    return BYSTANDER


# -- helpers ---------------------------------------------------------------------------------
def create_users(dep: Deployment, names: list[str]) -> None:
    answer = dep.api("POST", "/hub/api/users", json={"usernames": names})
    assert answer.status_code in (201, 409), answer.text


def containers_of(engine: docker.DockerClient, user: str) -> list[dict[str, Any]]:
    """Summaries (Id, Names, State, Labels) of every container, any state and role, that Berth
    made for `user`. Summaries, not Container objects: those are inspected one by one after
    the listing, and a short-lived volume-init container may be gone by then."""
    return engine.api.containers(all=True, filters={"label": f"berth.user={user}"})


def described(containers: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["Names"][0].lstrip("/"), c["State"]) for c in containers]


def server_model(dep: Deployment, user: str) -> dict[str, Any]:
    answer = dep.api("GET", f"/hub/api/users/{user}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def server_answers(dep: Deployment, user: str) -> bool:
    """The user's server answers through the proxy (its REST API, with the user's token)."""
    return dep.api("GET", f"/user/{user}/api/status", user=user).status_code == 200


def kernel(dep: Deployment, user: str, timeout: float = 60) -> KernelClient:
    return KernelClient(f"{dep.url}/user/{user}/", dep.token(user), timeout=timeout)


def assert_works(dep: Deployment, user: str) -> None:
    """The user's server answers, and a fresh kernel runs code."""
    assert server_answers(dep, user), f"{user}'s server does not answer"
    with kernel(dep, user) as k:
        result = k.execute("print(sum(range(1000)))")
    assert result.ok and result.stdout == "499500\n", result.describe()


def assert_hub_database_intact(engine: docker.DockerClient) -> None:
    hub = engine.containers.get("berth-hub")
    check = hub.exec_run(
        [
            "python",
            "-c",
            "import sqlite3; db = sqlite3.connect('/srv/berth/data/jupyterhub.sqlite'); "
            "print(db.execute('pragma integrity_check').fetchone()[0])",
        ]
    )
    assert check.exit_code == 0 and check.output.decode().strip() == "ok", check.output


def cgroup_value(container: Any, controller: str, name: str) -> str:
    """A cgroup file of a container, read from the host (v1 cgroupfs, or v2)."""
    for directory in (
        f"/sys/fs/cgroup/{controller}/docker/{container.id}",
        f"/sys/fs/cgroup/docker/{container.id}",
        f"/sys/fs/cgroup/system.slice/docker-{container.id}.scope",
    ):
        path = Path(directory, name)
        if path.exists():
            return path.read_text()
    raise FileNotFoundError(f"no cgroup file {controller}/{name} for {container.name}")


def oom_kills(container: Any) -> int:
    """How many processes the kernel's OOM killer has killed in the container's cgroup."""
    text = cgroup_value(container, "memory", "memory.oom_control")
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    raise AssertionError(f"no oom_kill counter in {text!r}")


def running_server(engine: docker.DockerClient, user: str) -> Any:
    found = [c for c in containers_of(engine, user) if c["State"] == "running"]
    assert len(found) == 1, described(containers_of(engine, user))
    return engine.containers.get(found[0]["Id"])


def wait_healthy_restart(engine: docker.DockerClient, started_before: str) -> None:
    hub = engine.containers.get("berth-hub")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        hub.reload()
        state = hub.attrs["State"]
        if state["StartedAt"] != started_before and state.get("Health", {}).get("Status") == (
            "healthy"
        ):
            return
        time.sleep(1)
    pytest.fail(f"the hub did not come back: {hub.attrs['State']}")


def settle(dep: Deployment, users: list[str], timeout: float = 180) -> dict[str, dict]:
    """Waits until no user has a pending action; returns their models."""
    deadline = time.monotonic() + timeout
    while True:
        models = {user: server_model(dep, user) for user in users}
        pending = {
            user: server.get("pending")
            for user, model in models.items()
            for server in (model.get("servers") or {}).values()
            if server.get("pending") or not server.get("ready")
        }
        if not pending:
            return models
        if time.monotonic() > deadline:
            pytest.fail(f"still pending after {timeout:.0f} s: {pending}")
        time.sleep(1)


# -- the faults ------------------------------------------------------------------------------
def hub_data_on_small_tmpfs(engine: docker.DockerClient) -> Any:
    """A `prepare` for `deployment`: the hub's data volume made before `berth up` (which keeps
    an existing volume) as a 64 MiB tmpfs with the labels `berth up` gives it, and a container
    that keeps it mounted, so that its files outlive a restart of the hub (a tmpfs volume is
    emptied when its last user stops)."""

    def prepare(config: dict[str, Any]) -> None:
        name = config["hub"]["data_volume"]
        engine.volumes.create(
            name,
            driver="local",
            driver_opts={
                "type": "tmpfs",
                "device": "tmpfs",
                "o": f"size={HUB_DATA_SIZE},uid=1000,gid=100,mode=0700",
            },
            labels={"berth.managed": "true", "berth.role": "hub-data"},
        )
        engine.containers.run(
            "berth/hub:latest",
            name=f"{name}-holder",  # PREFIX-named: the deployment's teardown removes it
            entrypoint=["sleep", "infinity"],
            volumes={name: {"bind": "/held", "mode": "ro"}},
            network_mode="none",
            detach=True,
        )

    return prepare


def hub_exec(engine: docker.DockerClient, code: str) -> str:
    result = engine.containers.get("berth-hub").exec_run(["python", "-c", code])
    assert result.exit_code == 0, result.output
    return result.output.decode()


def clean_failure(answer: Any) -> bool:
    """A refusal a person can read: an HTTP error, without a Python traceback in it."""
    return answer.status_code >= 400 and "Traceback" not in answer.text


def hub_health(dep: Deployment) -> int:
    try:
        return dep.session().get(f"{dep.url}/hub/health", timeout=10).status_code
    except requests.RequestException:
        return 0


def wait_hub_healthy(dep: Deployment, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while hub_health(dep) != 200:
        if time.monotonic() > deadline:
            pytest.fail(f"the hub did not answer /hub/health within {timeout:.0f} s")
        time.sleep(1)


def described_answer(answer: requests.Response) -> str:
    return f"HTTP {answer.status_code} {answer.text[:160]!r}"


def users_and_servers(dep: Deployment) -> dict[str, list[str]]:
    """Every user the hub's API lists, with the names of their ready servers."""
    answer = dep.api("GET", "/hub/api/users")
    assert answer.status_code == 200, answer.text
    return {
        user["name"]: sorted(n for n, s in (user.get("servers") or {}).items() if s.get("ready"))
        for user in answer.json()
    }


# Runs first in this module: it needs a deployment of its own (a hub on a small data volume),
# and only one deployment exists at a time: the module's `dep` is made after it is gone.
def test_hub_data_disk_full(tmp_path: Path, engine: docker.DockerClient):
    """The filesystem of the hub's SQLite database fills up while the hub serves."""
    prepare = hub_data_on_small_tmpfs(engine)
    with deployment(tmp_path, {"limits": {"memory": MEMORY_LIMIT}}, prepare) as dep:
        # Made before the fill: users with passwords, one running server.
        passwords = {name: add_user(dep, name) for name in ["early", "spawner", "later"]}
        dep.start_server("early")
        dep.token("early")  # (making a token writes to the database)
        before = users_and_servers(dep)
        fill_started = int(time.time()) - 1
        with HubWatcher(dep) as watcher:
            filled = hub_exec(engine, FILL_HUB_DATA)
            assert filled == "True\n", filled  # ENOSPC: nothing more fits beside the database
            outcomes: dict[str, str] = {}
            try:
                person = BrowserUser(dep, "early", passwords["early"])
                page = person.session.get(f"{dep.url}/hub/login", timeout=60)
                outcomes["login page"] = described_answer(page)
                assert page.status_code == 200 or clean_failure(page), page.text[:2000]
                login = person.session.post(
                    f"{dep.url}/hub/login",
                    data={
                        "username": "early",
                        "password": passwords["early"],
                        "_xsrf": person.xsrf(page.text),
                    },
                    timeout=60,
                    allow_redirects=False,
                )
                outcomes["login"] = described_answer(login)
                assert login.status_code == 302 or clean_failure(login), login.text[:2000]
                wrong = person.session.post(
                    f"{dep.url}/hub/login",
                    data={"username": "spawner", "password": "wrong", "_xsrf": person.xsrf("")},
                    timeout=60,
                    allow_redirects=False,
                )
                outcomes["wrong password"] = described_answer(wrong)
                assert wrong.status_code != 302, "a wrong password was let in"
                assert "Traceback" not in wrong.text, wrong.text[:2000]
                spawn = dep.api("POST", "/hub/api/users/spawner/server")
                outcomes["spawn"] = described_answer(spawn)
                assert spawn.status_code in (201, 202) or clean_failure(spawn), spawn.text
                made = dep.api("POST", "/hub/api/users", json={"usernames": ["during"]})
                outcomes["admin: create a user"] = described_answer(made)
                assert made.status_code == 201 or clean_failure(made), made.text
                listed = dep.api("GET", "/hub/api/users")
                outcomes["admin: list users"] = described_answer(listed)
                assert listed.status_code == 200 or clean_failure(listed), listed.text
                token = dep.berth("token", "spawner", timeout=120)
                outcomes["berth token"] = f"exit {token.returncode} {token.stderr.strip()!r}"
                assert token.returncode == 0 or (
                    "Traceback" not in token.stderr and len(token.stderr.splitlines()) <= 2
                ), token.stderr
                outcomes["health"] = str(hub_health(dep))
                # A running server checks each new token with the hub, which records the
                # token's activity in its database: a refusal here must be clean too.
                status = dep.api("GET", "/user/early/api/status", user="early")
                outcomes["early's running server, first use of a token"] = described_answer(status)
                assert status.status_code == 200 or clean_failure(status), status.text[:2000]
            finally:
                print("while the hub's disk was full:", *outcomes.items(), sep="\n  ")
                hub_exec(engine, f"import os; os.remove({HUB_FILLER!r})")
            wait_hub_healthy(dep)  # (the watcher below says whether it ever stopped answering)
            logs = engine.containers.get("berth-hub").logs(since=fill_started).decode()
            print("the hub's log while full:", *logs.splitlines()[-60:], sep="\n  ")

            assert_hub_database_intact(engine)
            settle(dep, ["spawner"])  # the spawn sent while full ended one way or the other
            during = users_and_servers(dep)
            assert during["spawner"] in ([], [""]), during
            if not during["spawner"]:  # refused: cleanly, with no container left behind
                assert not containers_of(engine, "spawner"), containers_of(engine, "spawner")
            lost = {u: s for u, s in before.items() if u != "spawner" and during.get(u) != s}
            assert not lost, f"lost after the disk was full: {lost}; now {during}"
            # The token refused while full may stay refused by that server for the time its
            # hub-auth cache keeps an answer (docs/security.md); a new token works at once.
            again = dep.api("GET", "/user/early/api/status", user="early").status_code
            print("the token refused while full, once space is back: HTTP", again)
            dep.tokens.pop("early")
            assert server_answers(dep, "early")
        watcher.assert_answered_throughout()

        # What the hub's API says is what its database holds: a restarted hub (the tmpfs stays
        # mounted by the holder) says the same.
        engine.containers.get("berth-hub").restart(timeout=30)
        time.sleep(2)
        wait_hub_healthy(dep)
        assert users_and_servers(dep) == during
        # A new login and spawn work, as a person does them.
        person = BrowserUser(dep, "later", passwords["later"])
        person.login()
        person.spawn()
        person.wait_for_lab(timeout=240)
        assert_hub_database_intact(engine)


def test_hub_killed_with_five_spawns_in_flight(dep: Deployment, engine: docker.DockerClient):
    users = [f"inflight{i}" for i in range(5)]
    create_users(dep, users)
    hub = engine.containers.get("berth-hub")
    started = hub.attrs["State"]["StartedAt"]
    # The POSTs answer when a spawn ends or after slow_spawn_timeout: send them side by side,
    # and kill as soon as the first server container exists (others are still on their way).
    with ThreadPoolExecutor(len(users)) as pool:
        posts = [pool.submit(dep.api, "POST", f"/hub/api/users/{u}/server") for u in users]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            roles = {c["Labels"].get("berth.role") for u in users for c in containers_of(engine, u)}
            if "single-user" in roles:
                break
            time.sleep(0.1)
        assert not any(post.done() for post in posts), "a spawn ended before the kill"
        hub.exec_run(["sh", "-c", "kill -9 $(cat /proc/1/task/1/children)"])
    wait_healthy_restart(engine, started)

    models = settle(dep, users)
    for user in users:
        if "" in (models[user].get("servers") or {}):
            assert server_answers(dep, user), f"{user}: hub says running, server does not answer"
            running_server(engine, user)
        else:
            left = described(containers_of(engine, user))
            assert not left, f"{user}: the hub says stopped, but containers are left: {left}"
    # Cleanly gone means a new start works; everyone ends running and reachable.
    for user in users:
        if "" not in (server_model(dep, user).get("servers") or {}):
            dep.start_server(user)
        assert server_answers(dep, user)
        running_server(engine, user)
    for user in users:
        dep.stop_server(user)
        assert not containers_of(engine, user), f"{user}: containers left after stop"


def test_one_user_out_of_memory(dep: Deployment, engine: docker.DockerClient, bystander: str):
    user = "oomuser"
    create_users(dep, [user])
    dep.start_server(user)
    server = running_server(engine, user)
    kills_before = oom_kills(server)
    with HubWatcher(dep) as watcher:
        hog = kernel(dep, user, timeout=30)
        hog.start()
        try:
            # The kernel dies mid-cell: no reply comes (timeout), or the socket closes.
            with pytest.raises((TimeoutError, WebSocketException, ConnectionError)):
                hog.execute(
                    "chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 2**20))",
                    timeout=30,
                )
        finally:
            hog.shutdown()
        assert oom_kills(server) > kills_before, "the hog never reached the memory limit"
        assert_works(dep, bystander)
        # Only the kernel died: the user's own server still runs and starts new kernels.
        assert running_server(engine, user).id == server.id
        assert_works(dep, user)
    watcher.assert_answered_throughout()
    dep.stop_server(user)


def test_one_user_fork_bombs(dep: Deployment, engine: docker.DockerClient, bystander: str):
    user = "bomber"
    create_users(dep, [user])
    dep.start_server(user)
    server = running_server(engine, user)
    # Half a CPU for the bomber's spinning forks: this machine is shared (2 cores).
    # (The spawner sets NanoCpus by default, so the update sets that too, not a CPU period;
    # docker-py's update() has no argument for it.)
    engine.api._post_json(
        engine.api._url("/containers/{0}/update", server.id), data={"NanoCpus": 500_000_000}
    ).raise_for_status()
    if not HAS_PIDS_KEY:
        # No limits.pids in berth.yaml yet: the engine API's container update sets one.
        engine.api._post_json(
            engine.api._url("/containers/{0}/update", server.id), data={"PidsLimit": PIDS_LIMIT}
        ).raise_for_status()
    assert int(cgroup_value(server, "pids", "pids.max")) == PIDS_LIMIT
    with HubWatcher(dep) as watcher:
        with kernel(dep, user) as k:
            started = k.execute(
                "import subprocess\n"
                "subprocess.Popen(['bash', '-c', ':(){ :|:& };:'], start_new_session=True)\n"
                "print('lit')"
            )
            assert started.ok and started.stdout == "lit\n", started.describe()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if int(cgroup_value(server, "pids", "pids.current")) >= PIDS_LIMIT - 5:
                    break
                time.sleep(0.5)
            else:
                pytest.fail("the bomb never reached the PIDs limit")
            for _ in range(3):  # the others keep working while the bomb keeps forking
                assert_works(dep, bystander)
                time.sleep(2)
            assert server_model(dep, user)["servers"][""]["ready"]
        # The bomber's server can still be stopped, and nothing of it is left.
        dep.stop_server(user)
    watcher.assert_answered_throughout()
    assert not containers_of(engine, user)
    assert_hub_database_intact(engine)


def test_one_user_fills_their_volume(dep: Deployment, engine: docker.DockerClient, bystander: str):
    user = "fullvol"
    create_users(dep, [user])
    # The spawner's own volume first, for the labels that say whose it is (the spawner and the
    # engine guard mount nothing else); then the same labels on a 64 MiB tmpfs volume: full in
    # a second, and the host's disk is never touched.
    dep.start_server(user)
    dep.stop_server(user)
    name = f"{PREFIX}-user-{user}"
    owner_labels = engine.volumes.get(name).attrs["Labels"]
    engine.volumes.get(name).remove()
    engine.volumes.create(
        name,
        driver="local",
        driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=64m,uid=1000,gid=100"},
        labels=owner_labels,
    )
    dep.start_server(user)
    with HubWatcher(dep) as watcher:
        with kernel(dep, user) as k:
            filled = k.execute(FILL_VOLUME.format(mount=MOUNT_POINT))
            assert filled.ok and filled.stdout == "True\n", filled.describe()
            saved = dep.api(
                "PUT",
                f"/user/{user}/api/contents/notes.txt",
                user=user,
                json={"type": "file", "format": "text", "content": "x" * 100_000},
            )
            assert saved.status_code >= 400, "a save succeeded on a full volume"
            assert_works(dep, bystander)
            assert_hub_database_intact(engine)
        # (A tmpfs volume lives as long as its mount: no restart with the volume full here.)
        with kernel(dep, user) as k:
            freed = k.execute(f"import os\nos.remove('{MOUNT_POINT}/ballast')")
            assert freed.ok, freed.describe()
        saved = dep.api(
            "PUT",
            f"/user/{user}/api/contents/notes.txt",
            user=user,
            json={"type": "file", "format": "text", "content": "kept"},
        )
        assert saved.status_code in (200, 201), saved.text
    watcher.assert_answered_throughout()
    dep.stop_server(user)


@pytest.mark.full
def test_dockerd_restart_with_twenty_servers(dep: Deployment, engine: docker.DockerClient):
    """Restarts the shared engine once: run under `flock /tmp/berth-hub-image.lock`."""
    if not engine.info().get("LiveRestoreEnabled"):
        pytest.skip(NO_LIVE_RESTORE)  # under CI, a failure (tests/conftest.py)
    users = [f"survivor{i}" for i in range(20)]
    create_users(dep, users)
    for user in users:
        answer = dep.api("POST", f"/hub/api/users/{user}/server")
        assert answer.status_code in (201, 202), answer.text
    settle(dep, users, timeout=600)
    before = {u: running_server(engine, u) for u in users}
    started = {u: c.attrs["State"]["StartedAt"] for u, c in before.items()}
    hub_started = engine.containers.get("berth-hub").attrs["State"]["StartedAt"]
    with HubWatcher(dep, timeout=20) as watcher:
        restart = subprocess.run(
            ["bash", str(REPO / "scripts" / "start-dockerd.sh"), "--restart"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert restart.returncode == 0, restart.stderr
        time.sleep(10)  # let the hub poll its servers against the restarted engine
    assert engine.containers.get("berth-hub").attrs["State"]["StartedAt"] == hub_started
    for user in users:
        container = running_server(engine, user)
        assert container.id == before[user].id
        assert container.attrs["State"]["StartedAt"] == started[user], f"{user} restarted"
        assert server_model(dep, user)["servers"][""]["ready"]
        assert server_answers(dep, user), f"{user} does not answer after the restart"
    assert_works(dep, users[0])
    # Last, so that the checks above run whatever it says: on dockerd 20.10 with the userland
    # proxy, the published port refuses connections for ~2 s while dockerd restarts.
    watcher.assert_answered_throughout()
    for user in users:
        dep.stop_server(user)
