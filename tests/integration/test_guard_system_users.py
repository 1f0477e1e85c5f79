"""SystemUserSpawner in a real JupyterHub that reaches the engine only through the engine guard,
set up as `berth up` sets it for `backend: system-users` (the guard's `--home-root /home` and
copy of the user database; the spawner reading that copy, without its own home check), but on
the host, so it runs without the deployment lock.

Accounts (``bsg<run>…``, made with useradd after the guard started) are removed afterwards.
"""

from __future__ import annotations

import os
import pwd
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from guard_process import guard_process
from host_accounts import NEEDS_USERADD, host_accounts
from hub_harness import Hub
from hub_marks import NEEDS_IMAGE, NEEDS_PROXY
from polling import wait_until

pytestmark = [
    pytest.mark.integration,
    NEEDS_IMAGE,
    NEEDS_PROXY,
    NEEDS_USERADD,
]

RUN = uuid.uuid4().hex[:5]
ALICE, HOMELESS = f"bsg{RUN}a", f"bsg{RUN}h"

SPAWNER_CONFIG = """
c.SystemUserSpawner.image = "{image}"
c.SystemUserSpawner.prefix = "{prefix}"
c.SystemUserSpawner.pull_policy = "never"
c.SystemUserSpawner.docker_url = "unix://WORKDIR/guard.sock"
c.SystemUserSpawner.trust_authenticator_names = True  # the dummy authenticator, for the test
c.SystemUserSpawner.passwd_file = "WORKDIR/userdb/passwd"
c.SystemUserSpawner.group_file = "WORKDIR/userdb/group"
c.SystemUserSpawner.check_host_home = False
"""


@pytest.fixture(scope="module")
def hub_and_guard_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, Path]]:
    hub = Hub(tmp_path_factory.mktemp("hub-sysusers-guard"), spawner="berth-system-users")
    hub.prefix = f"berth-sug-{hub.run_id}"
    hub.network_name = f"{hub.prefix}-net"
    hub.spawner_config = SPAWNER_CONFIG.replace("WORKDIR", str(hub.workdir))
    log_path = hub.workdir / "guard.log"
    args = ["--prefix", hub.prefix, "--network", "bridge", "--home-root", "/home",
            "--user-db-from", "/etc", "--user-db-to", str(hub.workdir / "userdb")]  # fmt: skip
    with (
        guard_process(hub.workdir / "guard.sock", log_path, args),
        host_accounts(f"bsg{RUN}") as host,
    ):
        host.add_user(ALICE)  # after the guard started: its copy of the user db must follow
        host.add_user(HOMELESS, home=False)
        wait_for_copy(hub.workdir / "userdb" / "passwd", [ALICE, HOMELESS])
        try:
            yield hub.start(), log_path
        finally:
            hub.cleanup()
            print(hub.log_tail())


def wait_for_copy(passwd: Path, names: list[str], timeout: float = 60) -> None:
    """Until the guard's copy of passwd lists ``names`` (it looks every 2 s): a hub that starts
    sooner than that would look the accounts up before the copy has them."""
    wait_until(
        lambda: all(f"\n{name}:" in "\n" + passwd.read_text() for name in names),
        timeout,
        lambda: f"the guard's copy of passwd to list {names}:\n{passwd.read_text()}",
    )


def test_an_account_made_after_the_guard_started_spawns_and_owns_its_files(
    hub_and_guard_log: tuple[Hub, Path],
) -> None:
    hub, guard_log = hub_and_guard_log
    alice = pwd.getpwnam(ALICE)
    hub.spawn(ALICE)  # found in the guard's copy, refreshed after useradd
    out = hub.execute(ALICE, "import os; open('made.txt', 'w').write('x'); print(os.getuid())")
    assert out.split() == [str(alice.pw_uid)]
    made = Path(f"/home/{ALICE}/made.txt").stat()
    assert (made.st_uid, made.st_gid) == (alice.pw_uid, alice.pw_gid)
    hub.stop(ALICE)
    assert "refused" not in guard_log.read_text()


def test_a_missing_home_is_refused_by_the_guard_and_told_as_such(
    hub_and_guard_log: tuple[Hub, Path],
) -> None:
    hub, guard_log = hub_and_guard_log
    hub.create_user(HOMELESS)
    r = hub.request_spawn(HOMELESS)
    assert r.status_code == 500, r.text
    message = r.json()["message"]
    assert message.startswith("Your home directory cannot be used: home '/home/"), message
    assert "does not exist on the host" in message
    assert not os.path.exists(f"/home/{HOMELESS}")
    assert f"home '/home/{HOMELESS}' does not exist" in guard_log.read_text()
