"""ContainerSpawner in a real JupyterHub + CHP against the real engine and the project image."""

from __future__ import annotations

import errno
import re
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest
import requests
from engine_reports import granted_capabilities, image_name
from hub_harness import Hub
from hub_marks import HUB_MARKS
from kernel_run import KERNEL_DIED
from run_once import run_once

pytestmark = HUB_MARKS

MISSING_IMAGE = "berth-test-never-built/missing:1"

SPAWNER_CONFIG = """
# The REST API answers a spawn with its outcome only if the spawn ends within
# slow_spawn_timeout (10 s by default), else with 202 while it goes on: the tests that assert
# a refusal's or failure's status and message (the OOM one starts a container first) must get
# it however slow the engine is. Below the harness's 120 s wait for the answer.
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 100}}
c.ContainerSpawner.image = "{image}"
c.ContainerSpawner.prefix = "{prefix}"
c.ContainerSpawner.pull_policy = "never"
c.ContainerSpawner.allowed_images = {{"Default": "{image}", "Alt": "{prefix}-alt:latest"}}
c.ContainerSpawner.volumes = {{
    "{{prefix}}-{{username}}": "/home/jovyan/work",  # the image has this directory
    "{{prefix}}-{{username}}{{server_suffix}}-data": "/home/jovyan/data",  # and not this one
}}
c.ContainerSpawner.read_only_volumes = {{"{{prefix}}-shared": "/home/jovyan/shared"}}

def mem_limit(spawner):
    from berth.spawner import limits
    return "256M" if spawner.user.name.startswith("oom") else limits.default_mem_limit()

def extra_create_kwargs(spawner):
    if spawner.user.name == "oom-main":  # the server process itself allocates past the limit
        return {{"command": ["python", "-c", "b = b'x' * (600 * 1024**2)"]}}
    return {{}}

def pre_spawn_hook(spawner):
    if spawner.user.name == "nopull":
        spawner.image = "berth-test-never-built/missing:1"
        spawner.allowed_images = []

c.ContainerSpawner.mem_limit = mem_limit
c.ContainerSpawner.extra_create_kwargs = extra_create_kwargs
c.ContainerSpawner.pre_spawn_hook = pre_spawn_hook
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(tmp_path_factory.mktemp("hub"), SPAWNER_CONFIG)
    alt = f"{h.prefix}-alt:latest"
    client = docker.from_env()
    # Repository and tag apart: Podman refuses a repository that carries its own tag.
    client.images.get(h.image).tag(f"{h.prefix}-alt", "latest")
    try:
        yield h.start()
    finally:
        h.cleanup()
        client.images.remove(alt, noprune=True)


def test_spawn_reach_run_code_and_stop(hub: Hub) -> None:
    hub.spawn("alice")
    r = hub.http.get(hub.user_url("alice") + "api/status", timeout=10)
    assert r.status_code == 200 and "kernels" in r.json()
    out = hub.execute(
        "alice", "import os; print(6 * 7, os.getuid(), os.environ['JUPYTERHUB_USER'])"
    )
    assert out.split() == ["42", "1000", "alice"]
    container = hub.container("alice")
    assert container.name == f"{hub.prefix}-alice"
    host = container.attrs["HostConfig"]
    assert granted_capabilities(host) == set()
    assert host["SecurityOpt"] == ["no-new-privileges"]
    image_user = hub.docker.images.get(hub.image).attrs["Config"]["User"]
    assert container.attrs["Config"]["User"] == image_user != "root"  # the image's own user
    ports = container.attrs["NetworkSettings"]["Ports"]["8888/tcp"]
    assert ports[0]["HostIp"] == "127.0.0.1"
    hub.stop("alice")
    with pytest.raises(docker.errors.NotFound):
        container.reload()  # remove=True: gone, volume kept
    assert hub.docker.volumes.get(f"{hub.prefix}-alice")


def test_progress_events_stream(hub: Hub) -> None:
    hub.create_user("paula")
    assert hub.request_spawn("paula").status_code in {201, 202}
    r = hub.api("GET", "/users/paula/server/progress", stream=True, timeout=120)
    events = [line for line in r.iter_lines(decode_unicode=True) if line.startswith("data:")]
    assert any("ready" in e for e in events), events
    hub.wait_ready("paula")
    hub.stop("paula")


def test_volume_owner_persistence_and_read_only(hub: Hub) -> None:
    hub.spawn("bob")
    code = (
        "import os\n"
        "for d in ['/home/jovyan/work', '/home/jovyan/data']:\n"
        "    st = os.stat(d); print(st.st_uid, st.st_gid)\n"
        "    open(d + '/note.txt', 'w').write('kept')\n"
        "try:\n    open('/home/jovyan/shared/x', 'w')\nexcept OSError as e:\n    print(e.errno)\n"
    )
    assert hub.execute("bob", code).split() == ["1000", "100", "1000", "100", "30"]  # EROFS
    assert {f"{hub.prefix}-bob", f"{hub.prefix}-bob-data"} <= {
        v.name for v in hub.docker.volumes.list(filters={"label": "berth.user=bob"})
    }
    hub.stop("bob")
    hub.spawn("bob")
    code = (
        "print(*(open(d + '/note.txt').read() for d in ['/home/jovyan/work', '/home/jovyan/data']))"
    )
    assert hub.execute("bob", code).split() == ["kept", "kept"]
    hub.stop("bob")


def test_existing_volume_is_never_chowned(hub: Hub) -> None:
    volume = f"{hub.prefix}-carol"
    # labelled as Berth labelled carol's volumes before it recorded account ids
    labels = {"berth.managed": "true", "berth.role": "volume", "berth.user": "carol"}
    hub.docker.volumes.create(volume, labels={**labels, "berth.prefix": hub.prefix})
    run_once(
        hub.docker,
        hub.image,
        entrypoint=["sh", "-c", "touch /v/root-file && chown 0:0 /v /v/root-file"],
        user="root",
        volumes={volume: {"bind": "/v", "mode": "rw"}},
        name=f"{hub.prefix}-prep",
        network_disabled=True,
    )
    hub.spawn("carol")
    code = "import os; print(*(os.stat(p).st_uid for p in ['/home/jovyan/work', "
    code += "'/home/jovyan/work/root-file']))"
    assert hub.execute("carol", code).split() == ["0", "0"]
    hub.stop("carol")


def test_named_servers_side_by_side(hub: Hub) -> None:
    hub.spawn("dave")
    hub.spawn("dave", "gpu")
    default, named = hub.container("dave"), hub.container("dave", "gpu")
    assert (default.name, named.name) == (f"{hub.prefix}-dave", f"{hub.prefix}-dave_gpu")
    out = hub.execute("dave", "import os; print(os.environ['JUPYTERHUB_SERVER_NAME'])", "gpu")
    assert out.strip() == "gpu"
    assert hub.http.get(hub.user_url("dave") + "api/status", timeout=10).status_code == 200
    hub.stop("dave", "gpu")
    hub.stop("dave")


def test_escaping_keeps_lookalike_users_apart(hub: Hub) -> None:
    """Spawned concurrently: users a.b, a-b, a_b and user a's server x never share a name.

    (Not user a's server "b": JupyterHub itself then gives it the OAuth client id of user
    "a-b" and refuses the second one -- a JupyterHub limitation, not the spawner's.)
    """
    servers = [("a.b", ""), ("a-b", ""), ("a_b", ""), ("a", "x")]
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda us: hub.spawn(*us), servers))
    names = {hub.container(u, s).name for u, s in servers}
    assert len(names) == len(servers)
    for user, server in servers:
        out = hub.execute(user, "import os; print(os.environ['JUPYTERHUB_USER'])", server)
        assert out.strip() == user
    with ThreadPoolExecutor(len(servers)) as pool:
        list(pool.map(lambda us: hub.stop(*us), servers))


def test_allowed_images_rest_and_forged_form(hub: Hub) -> None:
    hub.create_user("erin")
    r = hub.request_spawn("erin", image="evil/miner:latest")
    assert r.status_code == 403
    assert "not one of the images you may choose" in r.json()["message"]
    hub.spawn("erin", image="Alt")
    assert image_name(hub.container("erin").attrs["Config"]["Image"]) == f"{hub.prefix}-alt:latest"
    hub.stop("erin")

    browser = requests.Session()  # a logged-in user posting the spawn form by hand
    login = browser.get(f"{hub.url}/hub/login", timeout=10)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', login.text)
    assert xsrf, login.text[:500]
    r = browser.post(
        f"{hub.url}/hub/login",
        data={"username": "frida", "password": "x", "_xsrf": xsrf.group(1)},
        timeout=30,
    )
    form = browser.get(f"{hub.url}/hub/spawn/frida", timeout=30)
    assert 'name="image"' in form.text and "Alt" in form.text  # the options form is offered
    token = re.search(r'xsrf_token: "([^"]+)"', form.text)
    assert token
    r = browser.post(
        f"{hub.url}/hub/spawn/frida",
        data={"image": "evil/miner:latest", "_xsrf": token.group(1)},
        timeout=60,
    )
    assert "not one of the images you may choose" in r.text
    assert not hub.docker.containers.list(all=True, filters={"name": f"{hub.prefix}-frida"})


def test_missing_image_with_pull_never_is_explained(hub: Hub) -> None:
    hub.create_user("nopull")
    r = hub.request_spawn("nopull")
    assert r.status_code == 400, r.text
    assert MISSING_IMAGE in r.json()["message"] and "not present" in r.json()["message"]


def test_mem_limit_kills_a_kernel_that_allocates_past_it(hub: Hub) -> None:
    hub.spawn("oom-kernel")
    container = hub.container("oom-kernel")
    assert container.attrs["HostConfig"]["Memory"] == 256 * 1024**2
    out = hub.execute("oom-kernel", "b = b'x' * (600 * 1024**2); print('survived')")
    assert out.endswith(KERNEL_DIED) and "survived" not in out
    hub.stop("oom-kernel")


def test_mem_limit_on_the_server_process_stops_the_container(hub: Hub) -> None:
    hub.create_user("oom-main")
    r = hub.request_spawn("oom-main")
    assert r.status_code == 500, r.text
    assert "ran out of memory (256 MiB)" in r.json()["message"]
    assert "" not in hub.user_model("oom-main")["servers"]  # reported stopped


def test_container_killed_behind_the_hubs_back_is_noticed(hub: Hub) -> None:
    hub.spawn("gina")
    hub.container("gina").kill()
    # Polled every 2 s, then the hub's clean-up (engine calls) before the model changes.
    deadline = time.monotonic() + 120
    while "" in hub.user_model("gina")["servers"]:
        assert time.monotonic() < deadline, "poll did not notice the dead container"
        time.sleep(0.5)
    hub.spawn("gina")  # and it can start again (the dead container was cleaned up)
    hub.container("gina").remove(force=True)  # gone entirely, before poll notices:
    hub.stop("gina")  # stopping still works


def test_name_conflict_with_a_foreign_container(hub: Hub) -> None:
    foreign = hub.docker.containers.create(hub.image, name=f"{hub.prefix}-hank")
    hub.create_user("hank")
    r = hub.request_spawn("hank")
    assert r.status_code == 409, r.text
    assert "already exists and does not belong" in r.json()["message"]
    foreign.reload()  # untouched
    foreign.remove(force=True)


def wait_reported_ready(hub: Hub, user: str, servers: tuple[str, ...], timeout: float) -> None:
    """Until the hub reports each of ``servers`` ready. A starting hub checks the servers it
    had, and answers requests once init_spawners_timeout (10 s) has passed even if the checks
    have not ended: those servers are reported pending meanwhile. A server found dead is
    removed from the model, which fails here at once."""
    deadline = time.monotonic() + timeout
    while True:
        found = hub.user_model(user)["servers"]
        gone = [server for server in servers if server not in found]
        assert not gone, f"{user}'s servers {gone} are gone: {found}\n{hub.log_tail()}"
        if all(found[server]["ready"] for server in servers):
            return
        assert time.monotonic() < deadline, f"not ready after {timeout} s: {found}"
        time.sleep(0.5)


def test_hub_restart_keeps_servers_running(hub: Hub) -> None:
    hub.spawn("ivan")
    hub.spawn("ivan", "two")
    before = hub.container("ivan").id
    hub.restart_hub()
    wait_reported_ready(hub, "ivan", ("", "two"), timeout=120)
    for server in ("", "two"):
        r = hub.http.get(hub.user_url("ivan", server) + "api/status", timeout=10)
        assert r.status_code == 200
    assert hub.container("ivan").id == before
    assert hub.execute("ivan", "print('still here')").strip() == "still here"
    hub.stop("ivan", "two")
    hub.stop("ivan")


FORK_BOMB = """
import errno, os, time
children, failure = [], None
for _ in range(3000):  # bounded: on a host without a limit it stops here
    try:
        pid = os.fork()
    except OSError as exc:
        failure = exc.errno
        break
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.kill(pid, 9)
for pid in children:
    os.waitpid(pid, 0)
print(len(children), failure)
"""


def test_fork_bomb_is_contained_by_the_default_pids_limit(hub: Hub) -> None:
    """Fails on main before the change: no pids limit, so the bomb reaches its 3000 bound
    (an unbounded one would exhaust the host's process table, the hub's included)."""
    hub.spawn("bomber")
    container = hub.container("bomber")
    assert container.attrs["HostConfig"]["PidsLimit"] == 1024
    out = hub.execute("bomber", FORK_BOMB, timeout=120).split()
    forked, failure = int(out[0]), int(out[1])
    assert failure == errno.EAGAIN, out  # the pids cgroup said no
    assert forked < 1024
    # the container's other processes are fine: the server answers, a new kernel runs code
    assert hub.http.get(hub.user_url("bomber") + "api/status", timeout=10).status_code == 200
    assert hub.execute("bomber", "print(6 * 7)").strip() == "42"
    # and so is the host (and the hub on it)
    assert subprocess.run(["true"], check=False).returncode == 0
    assert hub.api("GET", "/").status_code == 200
    hub.stop("bomber")


def test_memory_hog_is_oom_killed_in_its_own_container(hub: Hub) -> None:
    """Fails on main before the change: no default memory limit, so the hog gets its 3 GiB
    (an unbounded one would push the host, the hub and its database into the OOM killer)."""
    from berth.spawner import limits

    hub.spawn("hog")
    container = hub.container("hog")
    limit = limits.default_mem_limit()
    assert container.attrs["HostConfig"]["Memory"] == limit
    hog = f"b = bytearray({limit + 1024**3}); b[::4096] = b'x' * len(b[::4096]); print('survived')"
    out = hub.execute("hog", hog, timeout=120)
    assert out.endswith(KERNEL_DIED) and "survived" not in out
    container.reload()
    assert container.status == "running"  # only the kernel died, in its own container
    assert hub.execute("hog", "print('still here')").strip() == "still here"
    hub.stop("hog")


def test_user_named_hub_cannot_mount_the_hubs_data_volume(hub: Hub) -> None:
    """Fails on main before the change: the template '{prefix}-{username}{server_suffix}-data'
    and a user named 'hub' mounted the hub's data volume (database, cookie secret, tokens)."""
    hub_data = f"{hub.prefix}-hub-data"
    hub.docker.volumes.create(hub_data, labels={"berth.managed": "true", "berth.role": "hub-data"})
    hub.create_user("hub")
    r = hub.request_spawn("hub")
    assert r.status_code == 409, r.text
    assert "hub's own data volume" in r.json()["message"]
    assert not hub.made_here("containers", "hub")


def test_unlabelled_volume_is_not_adopted(hub: Hub) -> None:
    """Fails on main before the change: any volume of the rendered name was mounted."""
    hub.docker.volumes.create(f"{hub.prefix}-uma")  # e.g. someone else's, made by hand
    hub.create_user("uma")
    r = hub.request_spawn("uma")
    assert r.status_code == 409, r.text
    assert "no owner labels" in r.json()["message"]
    assert "adopt_unlabelled_volumes" in r.json()["message"]


def test_recreated_user_does_not_inherit_the_deleted_users_files(hub: Hub) -> None:
    """Fails on main before the change: a user deleted and created again under the same name
    silently got the old account's volume and files."""
    hub.spawn("rita")
    hub.execute("rita", "open('/home/jovyan/work/private.txt', 'w').write('old rita')")
    hub.stop("rita")
    volume = hub.docker.volumes.get(f"{hub.prefix}-rita")
    labels = volume.attrs["Labels"]
    assert labels["berth.user-id"].isdigit()
    assert labels["berth.user-created"] == hub.user_model("rita")["created"][:19]
    assert hub.api("DELETE", "/users/rita").status_code == 204
    time.sleep(3)  # a new account is told apart by id, or by creation time when the id is reused
    hub.create_user("rita")
    r = hub.request_spawn("rita")
    assert r.status_code == 409, r.text
    message = r.json()["message"]
    assert "earlier account named 'rita'" in message and "docker volume rm" in message
    assert "" not in hub.user_model("rita")["servers"]
