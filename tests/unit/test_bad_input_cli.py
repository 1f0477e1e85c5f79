"""Bad input, property-based: the `berth` command line, run the way a shell runs it.

Each case runs ``berth.cli.main`` (what the ``berth`` script runs: typer plus the BerthError
handler) with generated arguments, with DOCKER_HOST pointing at a socket that does not exist.
A bad argument must end in exit status 2 (a usage error) or 1 with one ``error: ...`` line,
and must be refused *before* the engine is contacted: "cannot reach the Docker engine" means
the command went on with a value it should have refused. A good one gets exactly as far as
the (absent) engine. Never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from unittest import mock

import pytest
from bad_input import any_char, assert_clear_error, count, examples, outcome
from bad_input import names as name_text
from berth_yaml_files import files as berth_yaml_files
from cli_run import run_berth
from hypothesis import example, given
from hypothesis import strategies as st

from berth.config.fields import check_image, check_username
from berth.deploy import accounts
from berth.errors import BerthError
from berth.images import catalog
from berth.run.spec import validate_memory, validate_name

NO_ENGINE = "unix:///nonexistent/berth-fuzz-no-engine.sock"
ENGINE_ERROR = "cannot reach the Docker engine"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cli")
    (base / "berth.yaml").write_text("auth:\n  type: native\n")
    (base / "work").mkdir()
    return base


def berth(home: Path, *args: str, config: Path | None = None) -> tuple[int, str]:
    """Run `berth ARGS` as the console script does; returns (exit status, stderr)."""
    env = {"DOCKER_HOST": NO_ENGINE, "BERTH_CONFIG": str(config or home / "berth.yaml")}
    status, _, text = run_berth(*args, env=env)
    assert "Traceback" not in text, text
    return status, text


def assert_refused_before_engine(status: int, stderr: str) -> None:
    """Exit 2 (usage) or 1 with one clear ``error:`` line, and no engine contact."""
    assert status in (1, 2), (status, stderr)
    assert ENGINE_ERROR not in stderr, f"went on to the engine with a bad value: {stderr}"
    if status == 1:
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
        assert_clear_error(lines[0])
    else:
        assert "Usage:" in stderr or "Error" in stderr, stderr


def assert_reached_engine(status: int, stderr: str) -> None:
    assert status == 1 and ENGINE_ERROR in stderr, (status, stderr)


def valid(check, value) -> bool:
    try:
        check(value)
    except (ValueError, BerthError):
        return False
    return True


# argv cannot carry NUL; everything else (undecodable bytes arrive as lone surrogates) can.
argv_text = name_text.filter(lambda text: "\x00" not in text)


# --- user names: `berth users add|remove|set-password|admin`, `berth token` ----------------

user_commands = st.sampled_from(
    [("users", "add"), ("users", "remove"), ("users", "set-password"), ("token",)]
)


@examples(200)
@given(user_commands, argv_text)
@example(("users", "add"), "[/x]")  # rich read the message as markup: MarkupError traceback
@example(("users", "add"), "a\udcff")  # the byte 0xff in argv: accepted as a user name
@example(("users", "add"), "alice\u200b")  # zero-width space: a second "alice"
@example(("token",), "a b")  # refused only after connecting to the engine
@example(("users", "remove"), "a/b")
@example(("users", "add"), "Alice")
def test_user_names_on_the_command_line(home: Path, command, name: str) -> None:
    count("cli user names")
    status, stderr = berth(home, *command, "--", name)
    if valid(check_username, name):
        outcome("cli user name accepted")
        assert_reached_engine(status, stderr)
    else:
        outcome("cli user name refused")
        assert_refused_before_engine(status, stderr)
        if status == 1:
            assert "invalid user name" in stderr


@examples(60)
@given(argv_text)
@example("a/b")  # went on to the engine, to ask it for a label no server carries
@example("alice\u200b")
@example("Alice")
def test_logs_user_names(home: Path, name: str) -> None:
    count("cli user names")
    status, stderr = berth(home, "logs", f"--user={name}")
    if valid(check_username, name):
        assert_reached_engine(status, stderr)
    else:
        assert_refused_before_engine(status, stderr)
        if status == 1:
            assert "invalid user name" in stderr


@examples(60)
@given(argv_text, st.sampled_from(["on", "off", "yes", "", "ON", "[/]"]))
def test_admin_switch_on_the_command_line(home: Path, name: str, state: str) -> None:
    count("cli user names")
    status, stderr = berth(home, "users", "admin", "--", name, state)
    if valid(check_username, name) and state in ("on", "off"):
        assert_reached_engine(status, stderr)
    else:
        assert_refused_before_engine(status, stderr)


@examples(40)
@given(st.sampled_from(["-x", "--admin=3", "--nope", "-", "--config"]), argv_text)
def test_option_like_arguments_are_usage_errors(home: Path, option: str, name: str) -> None:
    count("cli user names")
    status, stderr = berth(home, "users", "add", option, name)
    assert status in (1, 2), stderr
    assert ENGINE_ERROR not in stderr or valid(check_username, name) or option == "-"


# --- `berth run`: image, name, port, memory ------------------------------------------------

images = st.one_of(
    st.sampled_from(
        [
            "berth/base-notebook:latest",
            "quay.io/jupyter/base-notebook:2024-01-01",
            "Berth/Base",
            "berth/base-notebook:",
            "berth//x",
            "-x",
            "berth/base-notebook:latest\n",
            "localhost:5000/a/b@sha256:" + "0" * 64,
        ]
    ),
    st.text(st.sampled_from("abAB09-_.:/@ "), min_size=1, max_size=20),
    argv_text.filter(bool),
)
memories = st.one_of(
    st.none(),
    st.sampled_from(["2g", "512m", "2G", "1.5g", "100", "lots", "-1g", "1e9", "9" * 400 + "g"]),
    st.text(any_char, max_size=8),
)
ports = st.one_of(st.integers(-10, 70000), st.sampled_from(["0x50", "http", "", "80 80", "+80"]))


def port_number(port: int | str) -> int | None:
    try:
        return int(port)
    except ValueError:
        return None


@examples(200)
@given(images, st.one_of(st.none(), argv_text), ports, memories)
@example("Berth/Base", None, 8888, None)  # not an image reference: went on to the engine
@example("berth/base-notebook:latest", "x\n", 8888, None)
@example("berth/base-notebook:latest", None, 8888, "lots")  # docker-py raised at create time
@example("berth/base-notebook:latest", None, 8888, "9" * 400 + "g")
@example("[/x]", None, 8888, None)
def test_berth_run_arguments(home: Path, image, name, port, memory) -> None:
    count("cli run")
    args = ["run", "--mount", str(home / "work"), "--port", str(port)]
    if name is not None:
        args += ["--name", name]
    if memory is not None:
        args += ["--memory", memory]
    status, stderr = berth(home, *args, "--", image)
    good = (
        port_number(port) is not None
        and 1 <= port_number(port) <= 65535
        and valid(check_image, image)
        and (name is None or valid(validate_name, name))
        and (memory is None or valid(validate_memory, memory))
    )
    if good:
        outcome("cli run accepted")
        assert_reached_engine(status, stderr)
    else:
        outcome("cli run refused")
        assert_refused_before_engine(status, stderr)


# --- `berth images build NAME...` ----------------------------------------------------------

image_names = st.one_of(
    st.sampled_from(
        [image.name for image in catalog.STACK] + [i.repository for i in catalog.STACK]
    ),
    st.sampled_from(["notebook", "berth/", "hub:latest", "berth/hub:1.0", "HUB", "../hub"]),
    argv_text.filter(bool),
)


@examples(100)
@given(
    st.lists(image_names, min_size=1, max_size=3), st.sampled_from([None, "debian:x", "Bad Base"])
)
@example(["no-such-image"], None)  # refused only after connecting (and resolving the base)
@example(["[/x]"], None)
def test_images_build_names(home: Path, names: list[str], base: str | None) -> None:
    count("cli images")
    extra = [] if base is None else ["--base-image", base]
    status, stderr = berth(home, "images", "build", *extra, "--", *names)
    good = all(valid(catalog.get, name) for name in names) and (
        base is None or valid(check_image, base)
    )
    if good:
        outcome("cli images accepted")
        assert_reached_engine(status, stderr)
    else:
        outcome("cli images refused")
        assert_refused_before_engine(status, stderr)


def test_images_build_all_and_names_together_is_refused(home: Path) -> None:
    status, stderr = berth(home, "images", "build", "--all", "scipy-notebook")
    assert_refused_before_engine(status, stderr)
    assert "--all" in stderr, stderr


def test_images_build_all_reaches_the_engine(home: Path) -> None:
    assert_reached_engine(*berth(home, "images", "build", "--all"))


# --- `berth up -c FILE` with generated berth.yaml files ------------------------------------


@examples(100)
@given(berth_yaml_files(), st.sampled_from([("up",), ("status",), ("users", "add", "alice")]))
@example(b"'[/x]': 1\n", ("up",))  # the message went through rich markup: MarkupError
@example(b"network: '[bold]x'\n", ("status",))
def test_config_files_on_the_command_line(home: Path, data: bytes, command) -> None:
    count("cli berth.yaml")
    path = home / "given.yaml"
    path.write_bytes(data)
    status, stderr = berth(home, *command, "--config", str(path))
    assert status == 1, (status, stderr)
    lines = stderr.splitlines()
    if ENGINE_ERROR in stderr:  # the file was fine: the command got to the engine
        outcome("cli berth.yaml accepted")
        return
    outcome("cli berth.yaml refused")
    assert lines[0].startswith(f"error: {path}"), stderr
    assert_clear_error("\n".join(lines)[len("error: ") :], lines_start_with=str(path))


# --- what `berth users ...` hands to berth.deploy.accounts in the hub container -------------


def received_by_accounts(wanted: dict) -> dict:
    """What berth.deploy.accounts.main hands its operation for a request sent as the hub's
    exec sends it (one JSON argument); the operation itself is not run."""
    out = io.StringIO()
    echo = {op: (lambda **fields: fields) for op in accounts.OPERATIONS}
    with mock.patch.dict(accounts.OPERATIONS, echo), contextlib.redirect_stdout(out):
        status = accounts.main([json.dumps(wanted)])
    assert status == 0, (wanted, out.getvalue())
    return json.loads(out.getvalue())


@examples(150)
@given(argv_text.filter(lambda name: valid(check_username, name)), argv_text)
@example("-alice", "--note")  # argparse in the hub took "-alice" for an option: exit 2
@example("--", "-")
def test_accounts_receive_the_name_that_was_checked(name: str, note: str) -> None:
    count("cli user names")
    name = check_username(name)
    add = accounts.request("add", name=name, admin=True, native=False)
    assert received_by_accounts(add) == {"name": name, "admin": True, "native": False}
    assert received_by_accounts(accounts.request("remove", name=name)) == {"name": name}
    admin = accounts.request("admin", name=name, admin=False)
    assert received_by_accounts(admin) == {"name": name, "admin": False}
    if not any("\ud800" <= ch <= "\udfff" for ch in note):  # `berth token` refuses those
        token = received_by_accounts(accounts.request("token", name=name, note=note))
        assert token == {"name": name, "note": note}


@pytest.mark.parametrize(
    ("wanted", "error"),
    [
        ({"op": "nope"}, "unknown operation 'nope'"),
        ({"op": "remove"}, "remove: missing a required argument: 'name'"),
        ({"op": "remove", "name": "a", "extra": 1}, "remove: got an unexpected keyword"),
        (["remove", "a"], "unknown operation None"),
    ],
)
def test_accounts_refuse_malformed_requests(wanted, error) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert accounts.main([json.dumps(wanted)]) == 1
    assert json.loads(out.getvalue())["error"].startswith(error)


def test_account_requests_are_checked_on_the_host() -> None:
    with pytest.raises(TypeError):
        accounts.request("admin", name="alice")  # no state given
    with pytest.raises(ValueError, match="unknown account operation"):
        accounts.request("rename", name="alice")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backup"], "name the users to back up, or pass --all"),
        (["backup", "alice", "--all"], "name the users to back up, or pass --all"),
        (["backup", "no/slash"], "invalid user name 'no/slash'"),
        (["backup", "--all", "--keep", "0"], "--keep must be at least 1"),
        (["restore", "missing.tar.gz"], "no such archive: missing.tar.gz"),
        (["restore", "berth.yaml", "-x"], "No such option: -x"),
    ],
)
def test_backup_and_restore_refuse_bad_arguments_before_the_engine(home, args, message):
    status, stderr = berth(home, *args)
    assert_refused_before_engine(status, stderr)
    assert message in stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["snapshot", "take", "bad user!"], "invalid user name"),
        (["snapshot", "take", "alice", "--name", "../x"], "invalid snapshot name"),
        (["snapshot", "take", "alice", "--name", "A:b"], "invalid snapshot name"),
        (["snapshot", "remove", "alice", "x/y"], "invalid snapshot name"),
        (["snapshot", "share", "alice", "x/y", "bob"], "invalid snapshot name"),
        (["snapshot", "share", "alice", "v1", "bad user!"], "invalid user name"),
        (["snapshot", "unshare", "alice", "v1", "bob", "../x"], "invalid user name"),
    ],
)
def test_snapshot_names_are_refused_before_the_engine_is_asked(
    home: Path, args: list[str], fragment: str
) -> None:
    """The engine address here answers nothing: a refusal that names the bad input shows it was
    checked first."""
    status, text = berth(home, *args)
    assert status != 0 and fragment in text, text


@pytest.mark.parametrize("backend", ["swarm", "system-users"])
def test_snapshots_are_refused_with_the_other_backends_before_the_engine_is_asked(
    home: Path, backend: str
) -> None:
    """On Swarm a commit would land on one node only; with system users the files are the home.
    Either way `berth snapshot take` says so instead of "the server is not running"."""
    config = home / f"berth-{backend}.yaml"
    extra = "system_users:\n  trust_login_names: true\n" if backend == "system-users" else ""
    config.write_text(
        f"backend: {backend}\nauth:\n  type: native\n  native:\n    enable_signup: false\n{extra}"
    )
    status, text = berth(home, "snapshot", "take", "alice", config=config)
    assert status == 1 and ENGINE_ERROR not in text, (status, text)
    assert f"snapshots work with backend: docker only, not '{backend}'" in text, text
