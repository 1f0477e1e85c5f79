"""SystemUserSpawner reading accounts from passwd/group files (the `berth up` hub's copy), and
the engine guard's refusal of a home shown to the user as a problem with their home."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import docker.errors
import pytest
import requests
from traitlets.config import Config

from berth.spawner import SystemUserSpawner, system_users
from berth.spawner.account_files import grouplist_lookup, passwd_lookup
from berth.spawner.errors import SpawnException
from berth.spawner.system_users import HostAccount


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, str]:
    passwd, group = tmp_path / "passwd", tmp_path / "group"
    passwd.write_text(
        "root:x:0:0::/root:\nada:x:1001:1001::/home/ada:\nzero:x:0:0::/home/zero:\n"
        "daemon:x:1:1::/usr/sbin:\n"
    )
    group.write_text("root:x:0:\nada:x:1001:\nstaff:x:50:ada,bob\nwheel:x:10:bob\n")
    return str(passwd), str(group)


def test_files_give_the_same_answers_as_nss(db: tuple[str, str]) -> None:
    passwd, group = db
    assert passwd_lookup(passwd)("ada").pw_uid == 1001
    assert grouplist_lookup(group)("ada", 1001) == [1001, 50]
    with pytest.raises(KeyError):
        passwd_lookup(passwd)("nobody")
    account = system_users.lookup("ada", 1000, passwd_lookup(passwd), grouplist_lookup(group))
    assert account == HostAccount("ada", 1001, 1001, (50,), "/home/ada")


def spawner(db: tuple[str, str], name: str) -> SystemUserSpawner:
    c = Config()
    c.SystemUserSpawner.passwd_file, c.SystemUserSpawner.group_file = db
    c.SystemUserSpawner.trust_authenticator_names = True
    user = SimpleNamespace(name=name, url=f"/user/{name}/", escaped_name=name)
    hub = SimpleNamespace(public_host="", api_url="http://hub:8081/hub/api", base_url="/hub/")
    orm = SimpleNamespace(name="", display_name="", server=None)
    return SystemUserSpawner(config=c, user=user, hub=hub, orm_spawner=orm)


@pytest.mark.parametrize(
    ("name", "needle"),
    [("nobody", "There is no account named 'nobody'"), ("zero", "uid 0"),
     ("daemon", "system account")],
)  # fmt: skip
def test_missing_root_and_system_accounts_are_refused_from_files(
    db: tuple[str, str], name: str, needle: str
) -> None:
    with pytest.raises(SpawnException) as info:
        spawner(db, name).host_account()
    assert needle in info.value.message and info.value.status_code == 403


def test_the_spec_runs_as_the_account_from_the_files_without_a_home_check(db) -> None:
    sp = spawner(db, "ada")
    sp.check_host_home = False  # the berth up hub cannot see /home/ada; the guard checks it
    spec = asyncio.run(sp._build_spec("berth/base-notebook:latest"))
    assert spec.privileges.user == "1001:1001" and tuple(spec.privileges.group_add) == (50,)
    assert [(m.source, m.target) for m in spec.mounts if m.is_host_path] == [
        ("/home/ada", "/home/ada")
    ]


def test_an_unreadable_user_database_is_a_configuration_error(tmp_path: Path) -> None:
    sp = spawner((str(tmp_path / "none"), str(tmp_path / "none")), "ada")
    with pytest.raises(SpawnException) as info:
        sp.host_account()
    assert "the user database cannot be read" in info.value.message


def api_error(status: int, message: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("refused", response=response, explanation=message)


def test_the_guards_home_refusal_is_read_back_and_other_errors_are_not() -> None:
    refused = api_error(403, "berth engine guard: home '/home/ada' does not exist on the host")
    assert system_users.guard_home_refusal(refused) == "home '/home/ada' does not exist on the host"
    assert system_users.guard_home_refusal(api_error(403, "berth engine guard: privileged")) is None
    assert system_users.guard_home_refusal(api_error(500, "home '/home/ada'")) is None


class RefusingEngine:
    """The calls a start makes up to the create, which the guard refuses with ``message``."""

    def __init__(self, message: str) -> None:
        self.message = message

    async def inspect_image(self, image: str) -> dict:
        return {"Id": "sha256:img", "Config": {"User": "1000"}}

    async def inspect_container(self, name_or_id: str) -> None:
        return None

    async def list_containers(self, labels: dict) -> list:
        return []

    async def create_container(self, kwargs: dict) -> str:
        raise api_error(403, self.message)


def test_a_home_refused_by_the_guard_is_told_as_a_problem_with_the_home(db) -> None:
    sp = spawner(db, "ada")
    sp.check_host_home = False
    sp.engine = RefusingEngine(
        "berth engine guard: home '/home/ada' does not exist on the host (it is never created "
        "as root)"
    )
    with pytest.raises(SpawnException) as info:
        asyncio.run(sp.start())
    assert info.value.message.startswith(
        "Your home directory cannot be used: home '/home/ada' does not exist on the host"
    )
    assert info.value.reason == "account"
    sp.engine = RefusingEngine("berth engine guard: privileged containers are not allowed")
    with pytest.raises(SpawnException) as other:
        asyncio.run(sp.start())
    assert other.value.reason == "engine"  # any other refusal stays an engine error
