"""The engine guard and system users' homes (`--home-root`): exactly one home per container,
bind-mounted into a container that runs as its owner; every other host path refused.

On main the guard has no homes root: `berth up` cannot run system users at all, and a hub
given `--allow-bind /home` instead would be allowed `/home` itself, any depth below it, a
container running as root or as another user over someone's home, and a missing home (which
the engine creates as root). Each test below is one of those attacks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from guard_requests import create_container

from berth.guard.bodies import Limits
from berth.guard.homes import HostDir, Identity, OwnerIds, owner_ids
from berth.guard.lookups import inspect_home
from berth.guard.policy import Decision, Found, Ref, Request, decide, needs
from berth.spawner import specs, system_users
from berth.spawner.system_users import HostAccount

PREFIX = "berth"
LIMITS = Limits(PREFIX, networks=("berth",), home_roots=("/home",))
OURS = {specs.LABEL_MANAGED: "true", specs.LABEL_PREFIX: PREFIX}
ADA = HostAccount("ada", 1001, 1001, (1500,), "/home/ada")
ADA_IDS = OwnerIds(frozenset({1001}), frozenset({1500}))
HOME = Ref("home", "/home/ada", Identity(1001, 1001, (1500,)))
ADAS_HOME = HostDir("directory", 1001, "/home/ada", ADA_IDS)


def system_user_request(host_home: str = "/home/ada", account: HostAccount = ADA) -> Request:
    """The create request SystemUserSpawner sends for ``account`` (through docker-py)."""
    spec = specs.ContainerSpec(
        name="berth-ada",
        image="berth/base-notebook:latest",
        identity=specs.Identity(username="ada", prefix=PREFIX),
        networking=specs.Networking(network_name="berth"),
    )
    spec = system_users.system_user_spec(spec, account, host_home, "/home/ada")
    return create_container(specs.container_create_kwargs(spec))


def raw(binds: list[str], user: Any = "1001:1001", **host: Any) -> Request:
    body: dict[str, Any] = {
        "Image": "berth/base-notebook:latest",
        "Labels": OURS,
        "HostConfig": {
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges"],
            "NetworkMode": "berth",
            "Binds": binds,
            **host,
        },
    }
    if user is not None:
        body["User"] = user
    data = json.dumps(body).encode()
    return Request("POST", "/v1.41/containers/create", {"content-type": "application/json"}, data)


def judge(request: Request, facts: dict[Ref, Any] | None = None) -> Decision:
    return decide(request, LIMITS, facts or {})


def refusal(request: Request, facts: dict[Ref, Any] | None = None) -> str:
    decision = judge(request, facts)
    assert not decision.allowed, f"allowed: {request}"
    return decision.reason


def test_the_spawners_request_is_allowed_when_the_home_is_the_owners_real_directory() -> None:
    request = system_user_request()
    assert needs(request, LIMITS) == (HOME,)
    body = json.loads(request.body)
    assert body["User"] == "1001:1001" and body["HostConfig"]["GroupAdd"] == ["1500"]
    assert judge(request, {HOME: ADAS_HOME}) == Decision(True, target=request.target)


@pytest.mark.parametrize(
    ("found", "reason"),
    [
        (None, "home '/home/ada': the guard cannot see the homes root to check it"),
        (HostDir("missing"), "home '/home/ada' does not exist on the host (it is never created"),
        (HostDir("link", 1001, "/etc"), "home '/home/ada' is a symbolic link"),
        (HostDir("other", 1001, "/home/ada", ADA_IDS), "home '/home/ada' is not a directory"),
        (
            HostDir("directory", 1001, "/srv/x/ada", ADA_IDS),
            "home '/home/ada' leads to '/srv/x/ada'",
        ),
        (
            HostDir("directory", 1002, "/home/ada", ADA_IDS),
            "home '/home/ada' belongs to uid 1002, not to the container's uid 1001",
        ),
        (HostDir("directory", 0, "/home/ada", ADA_IDS), "home '/home/ada' belongs to uid 0"),
        (
            HostDir("directory", 1001, "/home/ada", None),
            "home '/home/ada': no account in the host's user database has uid 1001",
        ),
        (
            HostDir("directory", 1001, "/home/ada", OwnerIds(frozenset({100}), frozenset())),
            "home '/home/ada': gid 1001 is not the primary group of uid 1001",
        ),
        (
            HostDir("directory", 1001, "/home/ada", OwnerIds(frozenset({1001}), frozenset())),
            "home '/home/ada': uid 1001 is not in the group(s) 1500 on the host",
        ),
    ],
)
def test_a_home_that_is_not_the_owners_real_directory_is_refused(
    found: HostDir | None, reason: str
) -> None:
    assert refusal(system_user_request(), {HOME: found}).startswith(reason)


@pytest.mark.parametrize(
    ("binds", "reason"),
    [
        (["/:/host"], "bind mount of host path '/' is not allowed"),
        (["/etc:/x"], "bind mount of host path '/etc' is not allowed"),
        (["/var/run/docker.sock:/s"], "bind mount of host path '/var/run/docker.sock'"),
        (["/home:/x"], "bind mount of '/home', the homes root, is not allowed"),
        (["/home/../etc:/x"], "'/home/../etc' is not a directory directly inside /home"),
        (["/home/ada/../../etc:/x"], "is not a directory directly inside /home"),
        (["/home/ada/.ssh:/x"], "'/home/ada/.ssh' is not a directory directly inside /home"),
        (["/home//ada:/x"], "is not a directory directly inside /home"),
        (["/home/./ada:/x"], "is not a directory directly inside /home"),
        (["/home/..:/x"], "names '..', not a home"),
        (["/home/ada/:/x"], "is not a directory directly inside /home"),
        (["/homeada:/x"], "bind mount of host path '/homeada' is not allowed"),
    ],
)
def test_every_other_host_path_is_refused(binds: list[str], reason: str) -> None:
    assert reason in refusal(raw(binds))


def test_a_bind_in_mounts_is_judged_like_one_in_binds() -> None:
    mount = {"Type": "bind", "Source": "/home", "Target": "/x"}
    request = raw([], Mounts=[mount])
    assert "the homes root, is not allowed" in refusal(request)
    relative = {"Type": "bind", "Source": "home/ada", "Target": "/x"}
    assert "must be an absolute host path" in refusal(raw([], Mounts=[relative]))
    ok = {"Type": "bind", "Source": "/home/ada", "Target": "/home/ada"}
    plain_ada = Ref("home", "/home/ada", Identity(1001, 1001))
    assert judge(raw([], Mounts=[ok]), {plain_ada: ADAS_HOME}).allowed


@pytest.mark.parametrize(
    ("user", "host", "reason"),
    [
        (None, {}, "must run as a numeric uid:gid, not None"),
        ("root", {}, "must run as a numeric uid:gid, not 'root'"),
        ("1001", {}, "must run as a numeric uid:gid, not '1001'"),
        ("ada:ada", {}, "must run as a numeric uid:gid"),
        ("0:1001", {}, "must not run as uid 0 or gid 0"),
        ("1001:0", {}, "must not run as uid 0 or gid 0"),
        ("1001:1001", {"GroupAdd": ["0"]}, "must not be in group 0"),
        ("1001:1001", {"GroupAdd": ["root"]}, "may add numeric groups only"),
        ("1001:1001", {"CapAdd": ["CHOWN"]}, "may not add capabilities back"),
        ("1001:1001", {"CapAdd": ["FOWNER", "SETUID"]}, "may not add capabilities back"),
    ],
)
def test_a_home_is_mounted_only_into_an_unprivileged_container(
    user: Any, host: dict[str, Any], reason: str
) -> None:
    """Root (or its group, or CAP_CHOWN/FOWNER/SETUID) over a home could leave a set-uid-root
    program there for the host user to run; a name would be resolved by the image, not us."""
    assert reason in refusal(raw(["/home/ada:/home/ada"], user=user, **host))


def test_a_home_for_another_uid_is_refused_even_when_the_spawner_asks() -> None:
    """The hub asks for ada's home in bob's container: the guard sees it is not bob's."""
    bob = HostAccount("bob", 1002, 1002, (), "/home/bob")
    request = system_user_request("/home/ada", bob)
    (ref,) = needs(request, LIMITS)
    assert ref == Ref("home", "/home/ada", Identity(1002, 1002))
    assert "belongs to uid 1001, not to the container's uid 1002" in refusal(
        request, {ref: ADAS_HOME}
    )


def test_without_a_homes_root_a_home_is_an_ordinary_host_path_and_refused() -> None:
    decision = decide(system_user_request(), Limits(PREFIX, networks=("berth",)), {})
    assert decision.reason == "bind mount of host path '/home/ada' is not allowed"


def test_a_home_container_gets_no_gid_or_group_the_owner_does_not_have() -> None:
    """A hub that picks the gid (or adds a group) of its choice, say the docker group's, would
    let the container leave a set-gid program in the home for the host user to run."""
    request = raw(["/home/ada:/home/ada"], user="1001:999", GroupAdd=["1500"])
    ref = Ref("home", "/home/ada", Identity(1001, 999, (1500,)))
    assert needs(request, LIMITS) == (ref,)
    assert "gid 999 is not the primary group of uid 1001" in refusal(request, {ref: ADAS_HOME})
    request = raw(["/home/ada:/home/ada"], GroupAdd=["1500", "998"])
    ref = Ref("home", "/home/ada", Identity(1001, 1001, (998, 1500)))
    assert "uid 1001 is not in the group(s) 998 on the host" in refusal(request, {ref: ADAS_HOME})


def test_owner_ids_come_from_every_account_with_the_uid() -> None:
    passwd = "ada:x:1001:1001::/home/ada:\nalias:x:1001:50::/x:\nbob:x:1002:1002::/home/bob:\n"
    group = "ada:x:1001:\nstaff:x:50:\nwheel:x:10:alias,bob\ndev:x:1500:ada\n"
    assert owner_ids(passwd, group, 1001) == OwnerIds(frozenset({1001, 50}), frozenset({10, 1500}))
    assert owner_ids(passwd, group, 1003) is None


def test_an_exec_is_only_as_the_containers_own_user() -> None:
    """An exec as root into a system user's container (no capability, but uid 0) could leave
    a root-owned set-uid program in a directory the user made world-writable in their home."""
    body = json.dumps({"Cmd": ["id"], "User": "0"}).encode()
    exec_create = Request("POST", "/v1.41/containers/berth-ada/exec", {}, body)
    assert refusal(exec_create) == "an exec runs as the container's own user (no User)"
    plain = json.dumps({"Cmd": ["id"], "User": ""}).encode()
    ours = {Ref("container", "berth-ada"): Found("c" * 64, OURS)}
    assert judge(Request("POST", "/v1.41/containers/berth-ada/exec", {}, plain), ours).allowed


def test_inspect_home_sees_directories_links_files_and_missing(tmp_path: Path) -> None:
    root = tmp_path / "homes"
    (root / "ada").mkdir(parents=True)
    (root / "file").write_text("x")
    (root / "link").symlink_to("/etc")
    (root / "inner").symlink_to(root / "ada")
    etc = tmp_path / "etc"
    etc.mkdir()
    uid = os.getuid()
    (etc / "passwd").write_text(f"me:x:{uid}:4242::/x:\n")
    (etc / "group").write_text("g:x:77:me\n")
    roots, db = (str(root),), str(etc)
    ids = OwnerIds(frozenset({4242}), frozenset({77}))
    assert inspect_home(f"{root}/ada", roots, db) == HostDir("directory", uid, f"{root}/ada", ids)
    assert inspect_home(f"{root}/file", roots, db) == HostDir("other", uid, f"{root}/file", ids)
    assert inspect_home(f"{root}/link", roots, db) == HostDir("link", uid, "/etc", ids)
    assert inspect_home(f"{root}/inner", roots, db).kind == "link"
    assert inspect_home(f"{root}/nobody", roots, db) == HostDir("missing")
    assert inspect_home(f"{tmp_path}/unseen/ada", (f"{tmp_path}/unseen",), db) is None
    assert inspect_home(f"{root}/ada", roots, str(tmp_path / "no-etc")) is None
