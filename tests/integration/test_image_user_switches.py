"""The notebook image's user switches, observed from outside as a user would observe them:
started as root, NB_UID/NB_GID/NB_USER, CHOWN_HOME/CHOWN_EXTRA, GRANT_SUDO, NB_UMASK and the
variables to unset take effect; started as another user, the root-only switches are warned
about and an arbitrary uid still gets a user and a writable home.

Scenarios and fleet as in test_image_startup.py (the `fleet` fixture: tests/integration/
conftest.py). The image is BERTH_TEST_IMAGE (default berth/base-notebook:latest).
"""

from __future__ import annotations

import re

import pytest
from image_fleet import BOOT_TIMEOUT, Fleet, http_get, server_process
from polling import wait_until

pytestmark = pytest.mark.integration
containers = pytest.mark.containers


# --- running as root: user switches -----------------------------------------------------------


@containers("root-ids-bind")
def test_files_in_a_bind_mount_belong_to_nb_uid_and_nb_gid(fleet: Fleet) -> None:
    server = fleet.server("root-ids-bind")
    lab = server_process(server)
    assert (lab["user"], lab["uid"], lab["gid"]) == ("jovyan", 1234, 2345)
    status, body = server.api(server.token).request(
        "PUT", "api/contents/work/created.txt", {"type": "file", "format": "text", "content": "x"}
    )
    assert status == 201, body
    created = server.work_dir / "created.txt"
    assert (created.stat().st_uid, created.stat().st_gid) == (1234, 2345)


@containers("renamed", "renamed-cmd")
def test_nb_user_renames_the_user_and_links_its_home(fleet: Fleet) -> None:
    status, run = fleet.finished("renamed-cmd")
    assert status == 0, run.logs()
    assert run.stdout().split() == [
        "berthuser",
        "HOME=/home/berthuser",
        "/home/berthuser",
        "/home/jovyan",  # linked, not copied: mounts under it keep working
        "ok",
    ]
    server = fleet.server("renamed")
    assert server_process(server)["user"] == "berthuser"
    wait_until(
        lambda: server.health() == "healthy", BOOT_TIMEOUT, "a healthy container (renamed user)"
    )


@containers("root-drops-privileges", "explicit-root", "explicit-root-server")
def test_root_is_dropped_unless_explicitly_requested(fleet: Fleet) -> None:
    status, run = fleet.finished("root-drops-privileges")
    assert status == 0, run.logs()
    assert run.stdout().split() == ["1000", "jovyan", "HOME=/home/jovyan", "/home/jovyan"]
    status, run = fleet.finished("explicit-root")
    assert status == 0, run.logs()
    assert run.stdout().split() == ["0", "HOME=/home/root", "root:x:0:0:root:/home/root:/bin/bash"]
    server = fleet.server("explicit-root-server")
    assert server_process(server)["uid"] == 0
    status, _, _ = http_get(server.base_url + "api/status", token=server.token)
    assert status == 200


@containers("chown-home", "no-chown-home")
def test_chown_home(fleet: Fleet) -> None:
    status, run = fleet.finished("chown-home")
    assert status == 0, run.logs()
    assert run.stdout().split() == ["1234:2345", "1234:2345"]
    # Without it, the home keeps its owner but stays writable through the users group.
    status, run = fleet.finished("no-chown-home")
    assert status == 0, run.logs()
    assert run.stdout().split() == ["1000:100", "1234", "2345", "writable"]


@containers("chown-extra")
def test_chown_extra_and_nb_group(fleet: Fleet) -> None:
    status, run = fleet.finished("chown-extra")
    assert status == 0, run.logs()
    assert run.stdout().split() == ["1234:2345", "1234:2345", "berthgroup"]


@containers("sudo-granted", "sudo-refused", "sudo-not-root")
def test_sudo_only_with_grant_sudo(fleet: Fleet) -> None:
    status, run = fleet.finished("sudo-granted")
    assert status == 0 and run.stdout().split() == ["0"], run.logs()
    status, run = fleet.finished("sudo-refused")
    assert status != 0, run.logs()
    status, run = fleet.finished("sudo-not-root")
    assert status != 0, run.logs()
    assert re.search(r"^WARNING\[.*must be started as root to grant sudo", run.logs(), re.MULTILINE)


@containers("umask")
def test_nb_umask(fleet: Fleet) -> None:
    status, run = fleet.finished("umask")
    assert status == 0, run.logs()
    assert run.stdout().split() == ["664", "775"]


@containers("env-unset")
def test_jupyter_env_vars_to_unset(fleet: Fleet) -> None:
    status, run = fleet.finished("env-unset")
    assert status == 0, run.logs()
    names = {line.split("=", 1)[0] for line in run.stdout().splitlines()}
    assert "KEPT_C" in names
    assert not names & {"SECRET_A", "SECRET_B", "JUPYTER_ENV_VARS_TO_UNSET"}


# --- not root ----------------------------------------------------------------------------------


@containers("ignored-switches")
def test_root_only_switches_are_warned_about_when_not_root(fleet: Fleet) -> None:
    status, run = fleet.finished("ignored-switches")
    assert status == 0 and run.stdout().split() == ["1000"], run.logs()
    warnings = [line for line in run.logs().splitlines() if line.startswith("WARNING[")]
    for name in ("NB_UID", "NB_GID", "NB_USER", "NB_GROUP", "CHOWN_HOME", "CHOWN_EXTRA"):
        assert any(f"{name}=" in line for line in warnings), (name, warnings)
    assert any("GRANT_SUDO=" in line for line in warnings), warnings


@containers("arbitrary-uid", "arbitrary-uid-cmd")
def test_an_arbitrary_uid_gets_a_user_and_a_writable_home(fleet: Fleet) -> None:
    status, run = fleet.finished("arbitrary-uid-cmd")
    assert status == 0, run.logs()
    whoami, home, writable = run.stdout().split()
    assert whoami == "jovyan" and writable == "home-writable"
    assert home.startswith("HOME=/tmp/"), home  # /home/jovyan is not writable by uid 1234
    server = fleet.server("arbitrary-uid")
    assert server_process(server)["uid"] == 1234
    status, _, _ = http_get(server.base_url + "api/status", token=server.token)
    assert status == 200
    wait_until(
        lambda: server.health() == "healthy", BOOT_TIMEOUT, "a healthy container (--user 1234)"
    )


@containers("engine-entry-uid-cmd")
def test_the_engines_entry_for_an_arbitrary_uid_is_replaced_by_the_users(fleet: Fleet) -> None:
    """Podman writes `1234:*:1234:0:container user:/home/jovyan:/bin/sh` for --user 1234 before
    start.sh runs; start.sh took that for an account, so `whoami` answered 1234, not jovyan as
    with docker-stacks on Docker. The entry (written by a hook on Docker) is replaced in place:
    one entry for the uid, NB_USER's, and the file keeps its other lines, owner and mode (no
    wider rights than the image's group-writable passwd). Fails on main on both engines."""
    status, run = fleet.finished("engine-entry-uid-cmd")
    assert status == 0, run.logs()
    whoami, entry, count, mode, kept = run.stdout().splitlines()
    assert whoami == "jovyan", run.logs()
    assert entry.startswith("jovyan:x:1234:0:jovyan:/tmp/") and entry.endswith(":/bin/bash")
    assert (count, mode, kept) == ("1", "664 root:root", "others-kept")


@containers("account-named-uid-cmd")
def test_an_account_named_after_its_uid_is_kept(fleet: Fleet) -> None:
    """Only the engine's entry is replaced (name = uid, password '*'): an image's own account
    with an all-digit name and a shadow password stays as it is. Passes on main too (main kept
    every entry); guards against replacing too much."""
    status, run = fleet.finished("account-named-uid-cmd")
    assert status == 0, run.logs()
    assert run.stdout().splitlines() == ["1234", "1234:x:1234:0:an account:/home/jovyan:/bin/bash"]
