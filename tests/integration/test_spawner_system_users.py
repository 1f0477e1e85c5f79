"""SystemUserSpawner in a real JupyterHub on this host, with real host accounts.

The accounts (``berthsu-<run>-…``, made with useradd, homes under /home) and a group are removed
afterwards. Needs root (useradd), the image and configurable-http-proxy.
"""

from __future__ import annotations

import contextlib
import pwd
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from host_accounts import NEEDS_USERADD, host_accounts, run
from hub_harness import Hub
from hub_marks import NEEDS_IMAGE, NEEDS_PROXY

pytestmark = [
    pytest.mark.integration,
    NEEDS_IMAGE,
    NEEDS_PROXY,
    NEEDS_USERADD,
]

RUN = uuid.uuid4().hex[:6]
ALICE, BOB, ROOTISH, NOBODY = (f"berthsu-{RUN}-{n}" for n in ("alice", "bob", "root", "none"))
GROUP = f"berthsu-{RUN}-grp"
PASSWORD = uuid.uuid4().hex

SPAWNER_CONFIG = """
c.JupyterHub.authenticator_class = "pam"  # the accounts that log in are the ones that run
c.Authenticator.allow_all = True
c.SystemUserSpawner.image = "{image}"
c.SystemUserSpawner.prefix = "{prefix}"
c.SystemUserSpawner.pull_policy = "never"
"""


@pytest.fixture(scope="module")
def accounts() -> Iterator[None]:
    with host_accounts(f"berthsu-{RUN}-") as host:
        host.add_group(GROUP)
        for name in (ALICE, BOB):
            host.add_user(name)
        run("usermod", "--append", "--groups", GROUP, ALICE)
        host.add_root_alias(ROOTISH)
        subprocess.run(
            ["chpasswd"], input=f"{ALICE}:{PASSWORD}\n", text=True, check=True, timeout=30
        )
        yield


@pytest.fixture(scope="module")
def hub(accounts: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(tmp_path_factory.mktemp("hub"), SPAWNER_CONFIG, spawner="berth-system-users")
    try:
        yield h.start()
    finally:
        h.cleanup()


def test_files_written_in_a_notebook_belong_to_the_host_account(hub: Hub) -> None:
    alice = pwd.getpwnam(ALICE)
    hub.spawn(ALICE)
    code = (
        "import os\n"
        "open(os.path.expanduser('~/from-notebook.txt'), 'w').write('hi')\n"
        "print(os.getuid(), os.getgid(), *sorted(os.getgroups()))\n"
        "print(os.environ['HOME'], os.getcwd())\n"
    )
    ids, where = hub.execute(ALICE, code).strip().splitlines()
    group = int(subprocess.check_output(["getent", "group", GROUP], text=True).split(":")[2])
    assert ids.split()[:2] == [str(alice.pw_uid), str(alice.pw_gid)]
    assert str(group) in ids.split()[2:]  # supplementary groups from the host
    assert where.split() == [f"/home/{ALICE}", f"/home/{ALICE}"]
    written = Path(f"/home/{ALICE}/from-notebook.txt")
    assert (written.stat().st_uid, written.stat().st_gid) == (alice.pw_uid, alice.pw_gid)
    container = hub.container(ALICE)
    assert container.attrs["Config"]["User"] == f"{alice.pw_uid}:{alice.pw_gid}"
    host = container.attrs["HostConfig"]
    assert not host["CapAdd"] and host["SecurityOpt"] == ["no-new-privileges"]
    hub.stop(ALICE)


def test_named_servers_are_containers_of_their_own_sharing_the_home(hub: Hub) -> None:
    """servers.named with system users: each server is its own container (the name carries the
    server suffix), running as the same host account with the same home, so both see the
    same files, as one person logged in twice. Fails on main before this change only in
    berth.yaml, which refused servers.named with backend: system-users."""
    alice = pwd.getpwnam(ALICE)
    hub.spawn(ALICE)
    hub.spawn(ALICE, "two")
    default, named = hub.container(ALICE), hub.container(ALICE, "two")
    assert named.name == default.name + "_two" and named.id != default.id
    assert named.attrs["Config"]["User"] == f"{alice.pw_uid}:{alice.pw_gid}"
    path = f"/home/{ALICE}/from-two.txt"
    hub.execute(ALICE, f"open({path!r}, 'w').write('two')", server="two")
    seen = hub.execute(ALICE, f"print(open({path!r}).read())")
    assert seen.strip() == "two"
    hub.stop(ALICE, "two")
    hub.stop(ALICE)


def test_a_name_without_a_host_account_is_refused(hub: Hub) -> None:
    # PAM only lets the hub add users that exist on the host: this one is removed afterwards,
    # as when an account is deleted on the host but not in the hub.
    run("useradd", "--no-create-home", NOBODY)
    try:
        hub.create_user(NOBODY)
    finally:
        run("userdel", NOBODY)
    r = hub.request_spawn(NOBODY)
    assert r.status_code == 403, r.text
    assert f"There is no account named '{NOBODY}'" in r.json()["message"]
    assert not hub.docker.containers.list(all=True, filters={"name": hub.prefix})


def test_an_account_with_uid_0_is_refused(hub: Hub) -> None:
    hub.create_user(ROOTISH)
    r = hub.request_spawn(ROOTISH)
    assert r.status_code == 403, r.text
    assert "uid 0" in r.json()["message"]
    assert not hub.docker.containers.list(all=True, filters={"name": hub.prefix})


def test_two_users_do_not_read_each_others_homes(hub: Hub) -> None:
    Path(f"/home/{ALICE}/secret.txt").write_text("alice's")
    shutil.chown(f"/home/{ALICE}/secret.txt", ALICE, ALICE)
    hub.spawn(BOB)
    code = (
        "import os\n"
        "print(sorted(os.listdir('/home')))\n"
        "for path in ['/home/{a}/secret.txt', '/host/home/{a}/secret.txt']:\n"
        "    try:\n        print(open(path).read())\n"
        "    except OSError as e:\n        print(type(e).__name__)\n"
    ).replace("{a}", ALICE)
    listing, *reads = hub.execute(BOB, code).strip().splitlines()
    assert ALICE not in listing and BOB in listing
    assert reads == ["FileNotFoundError", "FileNotFoundError"]
    # and on the host, bob's uid cannot read alice's home either
    result = subprocess.run(
        ["runuser", "-u", BOB, "--", "cat", f"/home/{ALICE}/secret.txt"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0 and "Permission denied" in result.stderr
    hub.stop(BOB)


def test_pam_login_then_spawn_runs_as_that_account(hub: Hub) -> None:
    browser = requests.Session()
    with contextlib.closing(browser):
        page = browser.get(f"{hub.url}/hub/login", timeout=10)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert xsrf
        wrong = browser.post(
            f"{hub.url}/hub/login",
            data={"username": ALICE, "password": "wrong", "_xsrf": xsrf.group(1)},
            timeout=30,
        )
        assert "Invalid username or password" in wrong.text
        page = browser.get(f"{hub.url}/hub/login", timeout=10)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        assert xsrf
        browser.post(
            f"{hub.url}/hub/login",
            data={"username": ALICE, "password": PASSWORD, "_xsrf": xsrf.group(1)},
            timeout=120,
        )
    hub.wait_ready(ALICE)  # logging in started alice's server
    alice = pwd.getpwnam(ALICE)
    assert hub.container(ALICE).attrs["Config"]["User"] == f"{alice.pw_uid}:{alice.pw_gid}"
    hub.stop(ALICE)
