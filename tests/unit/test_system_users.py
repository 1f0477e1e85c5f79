"""System users: account lookup, home checks and the container spec (berth.spawner.system_users)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from berth import names
from berth.spawner import specs, system_users
from berth.spawner.errors import SpawnException
from berth.spawner.system_users import HostAccount

ALICE = HostAccount("alice", 1001, 1001, (27, 1500), "/home/alice")


def passwd(name: str, uid: int, gid: int, home: str = "/home/x") -> pwd.struct_passwd:
    return pwd.struct_passwd((name, "x", uid, gid, "", home, "/bin/bash"))


def fake_db(*entries: pwd.struct_passwd, groups: dict[str, list[int]] | None = None):
    by_name = {e.pw_name: e for e in entries}

    def getpwnam(name: str) -> pwd.struct_passwd:
        return by_name[name]

    def getgrouplist(name: str, gid: int) -> list[int]:
        return [gid, *(groups or {}).get(name, [])]

    return {"getpwnam": getpwnam, "getgrouplist": getgrouplist}


def test_lookup_reads_uid_gid_groups_and_home() -> None:
    db = fake_db(passwd("alice", 1001, 1001, "/home/alice"), groups={"alice": [1500, 27, 1001]})
    assert system_users.lookup("alice", **db) == ALICE


@pytest.mark.parametrize(
    ("entry", "groups", "needle"),
    [
        (None, [], "There is no account named 'alice'"),
        (passwd("alice", 0, 1001), [], "uid 0"),
        (passwd("alice", 1001, 0), [], "primary group 0"),
        (passwd("alice", 1001, 1001), [0], "group 0 (root)"),
    ],
)
def test_lookup_refuses_missing_and_root(entry, groups: list[int], needle: str) -> None:
    db = fake_db(*([entry] if entry else []), groups={"alice": groups})
    with pytest.raises(SpawnException) as info:
        system_users.lookup("alice", **db)
    assert needle in info.value.message and info.value.status_code == 403


def test_lookup_refuses_system_accounts_below_min_uid() -> None:
    db = fake_db(passwd("daemon", 1, 1, "/usr/sbin"))
    with pytest.raises(SpawnException) as info:
        system_users.lookup("daemon", 1000, **db)
    assert "system account (uid 1, below 1000)" in info.value.message
    assert system_users.lookup("daemon", 1, **db).uid == 1


def test_lookup_of_a_weird_name_is_a_missing_account() -> None:
    with pytest.raises(SpawnException):
        system_users.lookup("no\0such")


def test_home_paths() -> None:
    assert system_users.home_paths(ALICE, "berth", "/home/{username}", "/home/{username}") == (
        "/home/alice",
        "/home/alice",
    )
    assert system_users.home_paths(ALICE, "berth", "{home}", "/home/jovyan/") == (
        "/home/alice",
        "/home/jovyan",
    )
    for bad in ("home/{username}", "/home/{username}/../root", "{nope}"):
        with pytest.raises(names.InvalidNameError):
            system_users.home_paths(ALICE, "berth", bad, "/home/jovyan")


def test_home_problem(tmp_path: Path) -> None:
    mine = os.getuid()
    home = tmp_path / "alice"
    assert "does not exist" in (system_users.home_problem(str(home), mine) or "")
    home.write_text("")
    assert "not a directory" in (system_users.home_problem(str(home), mine) or "")
    home.unlink()
    home.mkdir()
    assert system_users.home_problem(str(home), mine) is None
    assert "belongs to uid" in (system_users.home_problem(str(home), mine + 1) or "")
    link = tmp_path / "link"
    link.symlink_to(home)
    assert "symbolic link" in (system_users.home_problem(str(link), mine) or "")


def test_system_user_spec_runs_as_the_account() -> None:
    base = specs.ContainerSpec(
        name="berth-alice",
        image="img:1",
        identity=specs.Identity("alice"),
        environment={"JUPYTERHUB_API_TOKEN": "t", "NB_UID": "0", "GRANT_SUDO": "yes"},
        mounts=[specs.Mount("berth-alice", "/home/alice"), specs.Mount("data", "/data")],
        privileges=specs.Privileges("root", ("SETUID",), False),
    )
    spec = system_users.system_user_spec(base, ALICE, "/home/alice", "/home/alice")
    kwargs = specs.container_create_kwargs(spec)
    assert kwargs["user"] == "1001:1001"
    assert kwargs["working_dir"] == "/home/alice"
    assert kwargs["environment"] == {
        "JUPYTERHUB_API_TOKEN": "t",  # root-start switches are gone
        "HOME": "/home/alice",
        "USER": "alice",
        "LOGNAME": "alice",
    }
    hc = kwargs["host_config"]
    assert hc["binds"] == {
        "data": {"bind": "/data", "mode": "rw,nocopy"},
        "/home/alice": {"bind": "/home/alice", "mode": "rw"},  # replaces a volume at the home
    }
    assert (hc["cap_add"], hc["cap_drop"]) == ([], ["ALL"])
    assert hc["security_opt"] == ["no-new-privileges"]
    assert hc["group_add"] == ["27", "1500"]


@pytest.mark.parametrize(
    ("create", "host"),
    [({"user": "root"}, {}), ({}, {"cap_add": ["SETUID"]}), ({}, {"privileged": True})],
)
def test_extra_settings_cannot_run_a_system_users_server_as_someone_else(
    create: dict[str, object], host: dict[str, object]
) -> None:
    """A migrated DockerSpawner config with `user: root` ran the server as root before this
    change (the extras were merged over the account's uid)."""
    base = specs.ContainerSpec(
        name="berth-alice",
        image="img:1",
        identity=specs.Identity("alice"),
        extra_create_kwargs=create,
        extra_host_config=host,
    )
    with pytest.raises(SpawnException, match="runs as that account only"):
        system_users.system_user_spec(base, ALICE, "/home/alice", "/home/alice")


def test_only_local_logins_map_to_host_accounts() -> None:
    """With sign-up or OAuth, a stranger registering `ubuntu` got that host account's uid,
    groups and home before this change."""
    from jupyterhub.auth import Authenticator, PAMAuthenticator

    from berth.spawner.system import SystemUserSpawner

    spawner = SystemUserSpawner(authenticator=Authenticator())
    assert "does not log people in as host accounts" in (spawner.authenticator_problem() or "")
    assert SystemUserSpawner(authenticator=PAMAuthenticator()).authenticator_problem() is None
    trusted = SystemUserSpawner(authenticator=Authenticator(), trust_authenticator_names=True)
    assert trusted.authenticator_problem() is None
