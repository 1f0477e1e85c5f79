"""`berth run`'s pure decisions: identity, names, ports, and the container it asks for."""

from pathlib import Path

import pytest

from berth.errors import BerthError
from berth.run.spec import (
    RunIdentity,
    RunSpec,
    browser_url,
    choose_identity,
    create_kwargs,
    validate_name,
    validate_port,
)


def test_identity_follows_the_directory_owner():
    assert choose_identity(1234, 2345, caller_uid=0) == RunIdentity(1234, 2345)
    assert choose_identity(0, 0, caller_uid=1500) == RunIdentity(1500, 0)


def test_root_owned_directory_never_makes_the_notebook_root():
    identity = choose_identity(0, 0, caller_uid=0)
    assert (identity.uid, identity.gid) == (1000, 100)
    assert identity.note and "owned by root" in identity.note


@pytest.mark.parametrize("name", ["-x", "", "a", "a b", "a/b", "x" * 64, "é", "ab\n"])
def test_bad_names_are_refused(name):
    with pytest.raises(BerthError, match="invalid container name"):
        validate_name(name)


@pytest.mark.parametrize("name", ["ab", "berth-run-8888", "a_b.c-1", "x" * 63])
def test_good_names_are_kept(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("port", [0, 65536, -1])
def test_bad_ports_are_refused(port):
    with pytest.raises(BerthError, match="--port"):
        validate_port(port)


def _spec(**changes):
    values = dict(
        image="berth/base-notebook:latest",
        name="berth-run-8888",
        port=8888,
        mount=Path("/data/project"),
        identity=RunIdentity(1234, 2345),
    )
    values.update(changes)
    return RunSpec(**values)


def test_create_kwargs_are_unprivileged_and_on_loopback():
    kwargs = create_kwargs(_spec())
    assert kwargs["user"] == "1234:2345"
    assert kwargs["group_add"] == ["100"]
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["security_opt"] == ["no-new-privileges"]
    assert kwargs["ports"] == {"8888/tcp": ("127.0.0.1", 8888)}
    assert kwargs["volumes"] == {"/data/project": {"bind": "/home/jovyan/work", "mode": "rw"}}
    assert "GEN_CERT" not in kwargs["environment"]
    assert "mem_limit" not in kwargs


def test_public_https_and_memory():
    kwargs = create_kwargs(_spec(public=True, https=True, memory="2g", port=9999))
    assert kwargs["ports"] == {"8888/tcp": ("0.0.0.0", 9999)}
    assert kwargs["environment"]["GEN_CERT"] == "yes"
    assert kwargs["mem_limit"] == "2g"


def test_browser_url_uses_the_host_port_and_token():
    server = {"secure": True, "base_url": "/", "token": "abc", "port": 8888}
    assert browser_url(server, "127.0.0.1", 9000) == "https://127.0.0.1:9000/lab?token=abc"
    assert browser_url({"base_url": "/x/"}, "h", 1) == "http://h:1/x/lab"
