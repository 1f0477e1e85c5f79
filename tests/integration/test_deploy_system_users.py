"""`berth up` with `backend: system-users`, end to end, with real host accounts.

Accounts (``bsu<run><letter>``, made with useradd after `berth up`, so the hub must find
accounts made while it runs) and their homes are removed afterwards, with a group and a
symbolic link under /home. Needs root (useradd) and the images; runs under the deployment lock
(tests/deployment.py). On main `berth up` refuses `backend: system-users` outright.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from deploy_session import login
from deployment import Deployment, deployment
from engine_reports import granted_capabilities
from host_accounts import NEEDS_USERADD, host_accounts, run
from kernel_client import KernelClient

pytestmark = [
    pytest.mark.integration,
    NEEDS_USERADD,
]

RUN = uuid.uuid4().hex[:5]
ALICE, BOB, ROOTISH, HOMELESS, NOBODY = (f"bsu{RUN}{c}" for c in "abrhn")
GROUP, LINK, GONE = f"bsu{RUN}g", f"bsu{RUN}l", f"bsu{RUN}x"
USERDB = "/run/berth-engine/userdb"


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    extra = {
        "backend": "system-users",
        "system_users": {"trust_login_names": True},
        "auth": {"native": {"enable_signup": False}},
        "users": {"allowed": [ALICE, BOB, ROOTISH, HOMELESS, NOBODY]},
        "servers": {"named": True},
    }
    with deployment(tmp_path_factory.mktemp("deploy-sysusers"), extra) as made:
        yield made


@pytest.fixture(scope="module")
def accounts(dep: Deployment, engine: docker.DockerClient) -> Iterator[None]:
    """Host accounts made after `berth up`; removed (with their homes) afterwards."""
    with host_accounts(f"bsu{RUN}") as host:
        try:
            host.add_group(GROUP)
            for name in (ALICE, BOB):
                host.add_user(name)
            run("usermod", "--append", "--groups", GROUP, ALICE)
            host.add_user(HOMELESS, home=False)
            host.add_root_alias(ROOTISH)
            os.symlink("/etc", f"/home/{LINK}")
            wait_for_copy(engine, [ALICE, BOB, HOMELESS, ROOTISH])
            yield
        finally:  # before the accounts go: containers of theirs, and the link into /etc
            for container in engine.containers.list(all=True, filters={"label": "berth.prefix"}):
                if container.labels.get("berth.user", "").startswith(f"bsu{RUN}"):
                    container.remove(force=True)
            if os.path.islink(f"/home/{LINK}"):
                os.unlink(f"/home/{LINK}")


def wait_for_copy(engine: docker.DockerClient, names: list[str], timeout: float = 30) -> str:
    """The hub's copy of passwd, once it lists ``names`` (the guard refreshes it every 2 s)."""
    hub = engine.containers.get("berth-hub")
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = hub.exec_run(["cat", f"{USERDB}/passwd"]).output.decode()
        if all(f"\n{name}:" in "\n" + text for name in names):
            return text
        time.sleep(0.5)
    raise AssertionError(f"the hub's copy of passwd lacks {names}:\n{text}")


def spawn_error(dep: Deployment, user: str) -> tuple[int, str]:
    answer = dep.api("POST", f"/hub/api/users/{user}/server")
    return answer.status_code, (answer.json() or {}).get("message", answer.text)


def server_of(engine: docker.DockerClient, user: str):
    (container,) = engine.containers.list(filters={"label": f"berth.user={user}"})
    return container


def test_a_user_logs_in_spawns_and_their_files_belong_to_their_host_account(
    dep: Deployment, accounts: None, engine: docker.DockerClient
) -> None:
    alice = pwd.getpwnam(ALICE)
    session = login(dep, ALICE, dep.passwords[ALICE])
    spawned = session.get(f"{dep.url}/hub/spawn", timeout=60, allow_redirects=False)
    assert spawned.status_code in (200, 302), spawned.text[:300]
    dep.wait_ready(ALICE)
    code = (
        "import os\n"
        "open(os.path.expanduser('~/from-notebook.txt'), 'w').write('hi')\n"
        "print(os.getuid(), os.getgid(), *sorted(os.getgroups()))\n"
        "print(os.environ['HOME'], os.getcwd())\n"
    )
    with KernelClient(f"{dep.url}/user/{ALICE}/", dep.token(ALICE), timeout=90) as kernel:
        result = kernel.execute(code)
    assert result.ok, result.describe()
    ids, where = result.stdout.strip().splitlines()
    group = int(subprocess.check_output(["getent", "group", GROUP], text=True).split(":")[2])
    assert ids.split()[:2] == [str(alice.pw_uid), str(alice.pw_gid)]
    assert str(group) in ids.split()[2:]  # supplementary groups from the host
    assert where.split() == [f"/home/{ALICE}", f"/home/{ALICE}"]
    written = Path(f"/home/{ALICE}/from-notebook.txt").stat()
    assert (written.st_uid, written.st_gid) == (alice.pw_uid, alice.pw_gid)
    container = server_of(engine, ALICE)
    assert container.attrs["Config"]["User"] == f"{alice.pw_uid}:{alice.pw_gid}"
    host = container.attrs["HostConfig"]
    assert not host["CapAdd"] and host["SecurityOpt"] == ["no-new-privileges"]
    mounts = [
        (m["Type"], m["Source"], m["Destination"], m["RW"]) for m in container.attrs["Mounts"]
    ]
    assert mounts == [("bind", f"/home/{ALICE}", f"/home/{ALICE}", True)]  # no named volume
    dep.stop_server(ALICE)


def test_a_named_server_is_a_container_of_its_own_with_the_same_home(
    dep: Deployment, accounts: None, engine: docker.DockerClient
) -> None:
    """servers.named under `berth up` with system users: the guard lets the owner's home into a
    named server's container as into the default server's, and the two see the same files.
    Fails on main before this change: berth.yaml refused servers.named with system users."""
    alice = pwd.getpwnam(ALICE)
    for path in (f"/hub/api/users/{ALICE}/server", f"/hub/api/users/{ALICE}/servers/two"):
        answer = dep.api("POST", path)
        assert answer.status_code in (201, 202), answer.text
    for server in ("", "two"):
        dep.wait_ready(ALICE, server)
    found = {
        c.labels["berth.server"]: c
        for c in engine.containers.list(filters={"label": f"berth.user={ALICE}"})
    }
    assert sorted(found) == ["", "two"] and found["two"].name == found[""].name + "_two"
    for container in found.values():
        assert container.attrs["Config"]["User"] == f"{alice.pw_uid}:{alice.pw_gid}"
        binds = [(m["Source"], m["Destination"]) for m in container.attrs["Mounts"]]
        assert binds == [(f"/home/{ALICE}", f"/home/{ALICE}")]
    code = "import os; open(os.path.expanduser('~/from-two.txt'), 'w').write('two')"
    with KernelClient(f"{dep.url}/user/{ALICE}/two/", dep.token(ALICE), timeout=90) as kernel:
        assert kernel.execute(code).ok
    read = "import os; print(open(os.path.expanduser('~/from-two.txt')).read())"
    with KernelClient(f"{dep.url}/user/{ALICE}/", dep.token(ALICE), timeout=90) as kernel:
        result = kernel.execute(read)
    assert result.ok and result.stdout.strip() == "two", result.describe()
    dep.stop_server(ALICE, "two")
    dep.stop_server(ALICE)


def test_a_name_without_a_host_account_gets_a_clear_spawn_error(
    dep: Deployment, accounts: None, engine: docker.DockerClient
) -> None:
    status, message = spawn_error(dep, NOBODY)
    assert status == 403, message
    assert f"There is no account named '{NOBODY}'" in message
    assert not engine.containers.list(all=True, filters={"label": f"berth.user={NOBODY}"})


def test_an_account_with_uid_0_is_refused(
    dep: Deployment, accounts: None, engine: docker.DockerClient
) -> None:
    status, message = spawn_error(dep, ROOTISH)
    assert status == 403, message
    assert "uid 0" in message and "never run with root's identity" in message
    assert not engine.containers.list(all=True, filters={"label": f"berth.user={ROOTISH}"})


def test_an_account_without_its_home_is_refused_and_no_home_is_made(
    dep: Deployment, accounts: None, engine: docker.DockerClient
) -> None:
    """The engine would create a missing bind source as root; the guard refuses it first."""
    status, message = spawn_error(dep, HOMELESS)
    assert status == 500, message
    assert "Your home directory cannot be used" in message
    assert f"'/home/{HOMELESS}' does not exist on the host" in message
    assert not os.path.exists(f"/home/{HOMELESS}")
    assert not engine.containers.list(all=True, filters={"label": f"berth.user={HOMELESS}"})


def test_two_users_do_not_read_each_others_homes(
    dep: Deployment, accounts: None, engine: docker.DockerClient
) -> None:
    secret = Path(f"/home/{ALICE}/secret.txt")
    secret.write_text("alice's")
    shutil.chown(secret, ALICE, ALICE)
    dep.start_server(BOB)
    code = (
        "import os\n"
        "print(sorted(os.listdir('/home')))\n"
        "try:\n    print(open('/home/{a}/secret.txt').read())\n"
        "except OSError as e:\n    print(type(e).__name__)\n"
    ).replace("{a}", ALICE)
    with KernelClient(f"{dep.url}/user/{BOB}/", dep.token(BOB), timeout=90) as kernel:
        result = kernel.execute(code)
    assert result.ok, result.describe()
    listing, read = result.stdout.strip().splitlines()
    assert ALICE not in listing and BOB in listing
    assert read == "FileNotFoundError"
    # On the host too, bob's uid cannot read alice's home.
    host = subprocess.run(
        ["runuser", "-u", BOB, "--", "cat", str(secret)], capture_output=True, text=True, timeout=30
    )
    assert host.returncode != 0 and "Permission denied" in host.stderr
    dep.stop_server(BOB)


# Run inside the hub container, with its own DOCKER_HOST (the guard): each bind a hub could
# ask for, in an otherwise acceptable container on the deployment's network.
HUB_ATTACK = """
import json, os, docker
client = docker.from_env(timeout=30)
berth = {"berth.managed": "true", "berth.prefix": "berth", "berth.role": "single-user"}
a, b = os.environ["ALICE_IDS"], os.environ["BOB_IDS"]
a_with_bobs_gid = a.split(":")[0] + ":" + b.split(":")[1]
tries = {
    "/": ("/", a, {}), "/etc": ("/etc", a, {}),
    "the socket": ("/var/run/docker.sock", a, {}),
    "the homes root": ("/home", a, {}),
    "..": ("/home/../etc", a, {}),
    "deeper": ("/home/" + os.environ["ALICE"] + "/.ssh", a, {}),
    "a link to /etc": ("/home/" + os.environ["LINK"], a, {}),
    "a missing home": ("/home/" + os.environ["GONE"], a, {}),
    "alice's home as root": ("/home/" + os.environ["ALICE"], "0:0", {}),
    "alice's home as bob": ("/home/" + os.environ["ALICE"], b, {}),
    "alice's home with CHOWN": ("/home/" + os.environ["ALICE"], a, {"cap_add": ["CHOWN"]}),
    "alice's home in group 0": ("/home/" + os.environ["ALICE"], a, {"group_add": ["0"]}),
    "alice's home with bob's gid": ("/home/" + os.environ["ALICE"], a_with_bobs_gid, {}),
    "alice's home in bob's group": (
        "/home/" + os.environ["ALICE"], a, {"group_add": [b.split(":")[1]]}),
    "alice's home as alice": ("/home/" + os.environ["ALICE"], a, {}),
}
found = {}
for i, (name, (source, user, extra)) in enumerate(tries.items()):
    try:
        made = client.containers.create(
            "berth/foundation:latest", ["true"], name=f"berth-attack-{i}", labels=berth,
            cap_drop=["ALL"], security_opt=["no-new-privileges"], network=os.environ["NET"],
            user=user, volumes={source: {"bind": "/mnt/x", "mode": "rw"}}, **extra)
        try:  # and, made, no exec into it as root
            client.api.exec_create(made.id, ["id"], user="0")
            found[name] = "allowed, and an exec as root too"
        except docker.errors.APIError as exc:
            found[name] = "allowed" if exc.status_code == 403 else str(exc)
        made.remove(force=True)
    except docker.errors.APIError as exc:
        found[name] = [exc.status_code, str(exc.explanation)]
print(json.dumps(found))
"""
EXPECTED = {
    "/": "bind mount of host path '/' is not allowed",
    "/etc": "bind mount of host path '/etc' is not allowed",
    "the socket": "bind mount of host path '/var/run/docker.sock' is not allowed",
    "the homes root": "bind mount of '/home', the homes root, is not allowed",
    "..": "is not a directory directly inside /home",
    "deeper": "is not a directory directly inside /home",
    "a link to /etc": "is a symbolic link",
    "a missing home": "does not exist on the host",
    "alice's home as root": "must not run as uid 0 or gid 0",
    "alice's home as bob": "not to the container's uid",
    "alice's home with CHOWN": "may not add capabilities back",
    "alice's home in group 0": "must not be in group 0",
    "alice's home with bob's gid": "is not the primary group of uid",
    "alice's home in bob's group": "on the host",
}


def test_the_guard_allows_only_the_owners_home_from_inside_the_hub(
    dep: Deployment, accounts: None, engine: docker.DockerClient
) -> None:
    """Each bind is refused (403, for the reason named), except a home into a container that
    runs as its owner with the owner's groups (and no exec as root into that one); nothing was
    left on the engine. On main the guard has no homes root: every home bind is refused, the
    owner's too."""
    alice, bob = pwd.getpwnam(ALICE), pwd.getpwnam(BOB)
    env = {
        "ALICE": ALICE, "LINK": LINK, "GONE": GONE, "NET": dep.config["network"],
        "ALICE_IDS": f"{alice.pw_uid}:{alice.pw_gid}", "BOB_IDS": f"{bob.pw_uid}:{bob.pw_gid}",
    }  # fmt: skip
    hub = engine.containers.get("berth-hub")
    attempt = hub.exec_run(["python3", "-c", HUB_ATTACK], environment=env)
    assert attempt.exit_code == 0, attempt.output.decode()
    found = json.loads(attempt.output.decode().strip().splitlines()[-1])
    assert found.pop("alice's home as alice") == "allowed"
    assert set(found) == set(EXPECTED)
    for name, reason in EXPECTED.items():
        status, message = found[name]
        assert status == 403 and "berth engine guard" in message and reason in message, name
    assert not engine.containers.list(all=True, filters={"name": "berth-attack"})


def test_the_hub_sees_only_a_copy_of_names_ids_and_homes(
    dep: Deployment, accounts: None, engine: docker.DockerClient
) -> None:
    """No new mount in the hub; the copy has no password field, GECOS or shell; the guard has
    the host's /etc and the homes root read-only."""
    hub = engine.containers.get("berth-hub")
    assert sorted(m["Destination"] for m in hub.attrs["Mounts"]) == [
        "/run/berth-engine", "/srv/berth/data", "/srv/berth/proxy",
    ]  # fmt: skip
    assert granted_capabilities(hub.attrs["HostConfig"]) == set()
    alice = pwd.getpwnam(ALICE)
    passwd = wait_for_copy(engine, [ALICE])
    assert f"{ALICE}:x:{alice.pw_uid}:{alice.pw_gid}::/home/{ALICE}:\n" in passwd
    assert "/bin/bash" not in passwd
    listing = hub.exec_run(["ls", "-A", USERDB]).output.decode().split()
    assert listing == ["group", "passwd"]
    guard = engine.containers.get("berth-engine-guard")
    ro = {m["Destination"]: m["RW"] for m in guard.attrs["Mounts"] if m["Type"] == "bind"}
    assert ro["/srv/berth/host-etc"] is False and ro["/home"] is False
