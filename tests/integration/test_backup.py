"""`berth backup` / `berth restore` against a real `berth up` deployment.

As an operator's day: back up while alice's kernel writes, lose alice's volume and restore it
(her notebook comes back through her server: checked through Jupyter's contents API over HTTPS,
as the browser's file browser reads it), refuse damaged and edited archives without changing
anything, and restore the hub's database (with the hub stopped and started again). The two
archives are made once, by the `backups` fixture, for whichever test asks first; each test then
puts alice's server in the state it needs, so any one of them can run alone.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from deployment import Deployment
from engine_reports import granted_capabilities
from kernel_client import KernelClient

pytestmark = pytest.mark.integration

VOLUME = "berth-test-deploy-user-alice"
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": "print('restored from a backup')",
        }
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}
# Rewrites counter.txt with a different size on every pass, as fast as it can: the worst case
# for a copy that stats a file and then reads it.
WRITER = """
import threading, itertools
stop = threading.Event()
def write():
    for i in itertools.count():
        if stop.is_set():
            break
        with open("/home/jovyan/work/counter.txt", "w") as handle:
            handle.write(str(i) * (i % 20000))
threading.Thread(target=write, daemon=True).start()
"""


@dataclass
class Backups:
    users_only: subprocess.CompletedProcess  # `berth backup alice`
    everything: subprocess.CompletedProcess  # `berth backup --all`
    writer_kept_running: bool  # alice's kernel still wrote after both backups
    labels: dict[str, str]  # alice's volume's labels when they were made

    @property
    def alice(self) -> Path:
        return Path(self.users_only.stdout.strip().splitlines()[-1])

    @property
    def full(self) -> Path:
        return Path(self.everything.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def backups(hub_deployment, engine, tmp_path_factory) -> Backups:
    """alice with a notebook, backed up (her volume alone, then everything) while her kernel
    rewrites a file in her volume as fast as it can."""
    dep = hub_deployment
    if dep.api("GET", "/hub/api/users/alice").status_code == 404:
        assert dep.berth("users", "add", "alice").returncode == 0
    running(dep, "alice")
    saved = dep.api(
        "PUT",
        "/user/alice/api/contents/analysis.ipynb",
        json={"type": "notebook", "content": NOTEBOOK},
    )
    assert saved.status_code in (200, 201), saved.text
    target = tmp_path_factory.mktemp("backups")
    with KernelClient(f"{dep.url}/user/alice/", dep.token()) as kernel:
        started = kernel.execute(WRITER)
        assert started.ok, started.describe()
        time.sleep(1)
        users_only = dep.berth("backup", "alice", "--to", str(target), timeout=600)
        everything = dep.berth("backup", "--all", "--to", str(target), timeout=600)
        progress = kernel.execute(
            "import os; print(os.path.getsize('/home/jovyan/work/counter.txt') >= 0)"
        )
        kernel.execute("stop.set()")
    assert users_only.returncode == 0, users_only.stderr
    assert everything.returncode == 0, everything.stderr
    assert progress.ok, progress.describe()
    labels = engine.volumes.get(VOLUME).attrs["Labels"]
    return Backups(users_only, everything, "True" in progress.stdout, labels)


def running(dep: Deployment, user: str) -> None:
    """The user's server runs (started if it does not)."""
    server = (dep.api("GET", f"/hub/api/users/{user}").json().get("servers") or {}).get("")
    if not (server and server.get("ready")):
        dep.start_server(user)


def stopped(dep: Deployment, user: str) -> None:
    """The user's server does not run (stopped if it does)."""
    if "" in (dep.api("GET", f"/hub/api/users/{user}").json().get("servers") or {}):
        dep.stop_server(user)


def contents(dep: Deployment, user: str, name: str):
    return dep.api("GET", f"/user/{user}/api/contents/{name}")


def restore(dep: Deployment, *args: str):
    return dep.berth("restore", *args, timeout=600)


def volume_created(engine) -> str:
    return engine.volumes.get(VOLUME).attrs["CreatedAt"]


def test_backup_while_a_kernel_writes(hub_deployment, backups: Backups):
    dep = hub_deployment
    assert backups.writer_kept_running  # the backups did not stop or block alice's kernel
    for path in (backups.alice, backups.full):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        check = restore(dep, str(path), "--check")
        assert check.returncode == 0 and "intact" in check.stderr, check.stderr
    with tarfile.open(backups.full) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("berth-backup.json").read())["manifest"]  # type: ignore[union-attr]
    assert "hub/database.sqlite" in names and "hub/data/secrets/cookie_secret" in names
    assert f"volumes/{VOLUME}/counter.txt" in names
    assert f"volumes/{VOLUME}/analysis.ipynb" in names
    assert manifest["volumes"][VOLUME]["user"] == "alice"
    assert manifest["volumes"][VOLUME]["labels"] == backups.labels


def test_restore_a_deleted_volume_and_see_the_notebook(hub_deployment, engine, backups: Backups):
    dep = hub_deployment
    labels = engine.volumes.get(VOLUME).attrs["Labels"]
    stopped(dep, "alice")
    engine.volumes.get(VOLUME).remove()
    result = restore(dep, str(backups.alice), "alice")
    assert result.returncode == 0, result.stderr
    assert "restored and verified" in result.stderr
    assert engine.volumes.get(VOLUME).attrs["Labels"] == labels  # the spawner's ownership check
    dep.start_server("alice")
    answer = contents(dep, "alice", "analysis.ipynb")
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"]["cells"][0]["source"] == NOTEBOOK["cells"][0]["source"]
    assert contents(dep, "alice", "counter.txt").status_code == 200


def test_an_existing_volume_is_kept_unless_replace(hub_deployment, engine, backups: Backups):
    dep = hub_deployment
    running(dep, "alice")
    before = volume_created(engine)
    kept = restore(dep, str(backups.alice), "alice")
    assert kept.returncode == 1 and "exist already" in kept.stderr, kept.stderr
    in_use = restore(dep, str(backups.alice), "alice", "--replace")
    assert in_use.returncode == 1 and "in use" in in_use.stderr, in_use.stderr
    assert volume_created(engine) == before


def _rewrite(source: Path, target: Path, edit) -> None:
    with tarfile.open(source) as tar:
        items = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]  # type: ignore[union-attr]
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle, tarfile.open(fileobj=handle, mode="w:gz") as out:
        for member, data in items:
            member, data = edit(member, data)
            if data is not None:
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if data is not None else None)


def test_truncated_and_tampered_archives_change_nothing(
    hub_deployment, engine, backups: Backups, tmp_path
):
    dep = hub_deployment
    stopped(dep, "alice")
    before = volume_created(engine)
    source = backups.alice
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(source.read_bytes()[: source.stat().st_size * 2 // 3])

    def plant(member, data):
        if member.name.endswith("analysis.ipynb"):
            data = data.replace(b"restored from a backup", b"planted by an attacker!")
        return member, data

    tampered = tmp_path / "tampered.tar.gz"
    _rewrite(source, tampered, plant)

    def forge(member, data):
        member, data = plant(member, data)
        if member.name == "berth-backup.json":
            document = json.loads(data)
            with tarfile.open(tampered) as tar:
                planted = tar.extractfile(f"volumes/{VOLUME}/analysis.ipynb").read()  # type: ignore[union-attr]
            entry = document["manifest"]["entries"][f"volumes/{VOLUME}/analysis.ipynb"]
            entry["sha256"], entry["size"] = hashlib.sha256(planted).hexdigest(), len(planted)
            data = json.dumps(document).encode()
        return member, data

    forged = tmp_path / "forged.tar.gz"
    _rewrite(source, forged, forge)
    for path, expected in (
        (truncated, "damaged or truncated"),
        (tampered, "does not match its manifest"),
        (forged, "signature does not match"),
    ):
        result = restore(dep, str(path), "alice", "--replace")
        assert result.returncode == 1, result.stderr
        assert expected in result.stderr and "nothing was changed" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert volume_created(engine) == before
    dep.start_server("alice")
    answer = contents(dep, "alice", "analysis.ipynb")
    assert answer.json()["content"]["cells"][0]["source"] == NOTEBOOK["cells"][0]["source"]


def test_restore_the_hub_database(hub_deployment, engine, backups: Backups):
    """A user added after the backup is gone once the hub's data is restored; the admin's
    sessions and the cookie secret are the backup's; the hub runs again."""
    dep = hub_deployment
    assert dep.berth("users", "add", "bob").returncode == 0
    stopped(dep, "alice")
    hub_before = engine.containers.get("berth-hub").id
    result = restore(dep, str(backups.full), "--replace")
    assert result.returncode == 0, result.stderr
    assert "stopping the hub" in result.stderr and "starting the hub again" in result.stderr
    hub = engine.containers.get("berth-hub")
    assert hub.id == hub_before and hub.status == "running"
    dep.tokens.clear()  # tokens made after the backup are gone with the database
    listed = dep.berth("users", "list")
    assert listed.returncode == 0, listed.stderr
    assert "alice" in listed.stdout and "bob" not in listed.stdout
    mode = hub.exec_run(["stat", "-c", "%a", "/srv/berth/data/secrets/cookie_secret"]).output
    assert mode.decode().strip() == "600"
    dep.start_server("alice")
    answer = contents(dep, "alice", "analysis.ipynb")
    assert answer.status_code == 200, answer.text


def scheduled_state(directory: Path) -> dict:
    try:
        return json.loads((directory / ".berth-backup-state.json").read_text())
    except (OSError, ValueError):
        return {}


def test_scheduled_backups_run_in_berth_backup_and_keep_the_newest(
    hub_deployment, engine, tmp_path, monkeypatch
):
    """backup.enabled: `berth up` adds berth-backup (no network, read-only, no capabilities)
    beside the unchanged hub; it writes verifiable archives into a host directory every 15 s,
    keeps the newest 2, and `berth status` shows the last one. Before this change `berth up`
    refused backup.enabled."""
    dep = hub_deployment
    hub_id = engine.containers.get("berth-hub").id
    destination = tmp_path / "scheduled"
    destination.mkdir(mode=0o700)
    monkeypatch.setenv("BERTH_TEST_BACKUP_MIN_EVERY", "10")  # the schema's minimum is 5m
    dep.config["backup"] = {
        "enabled": True, "every": "15s", "keep": 2, "directory": str(destination),
    }  # fmt: skip
    dep.write_config()
    try:
        started = dep.berth("up")
        assert started.returncode == 0, started.stderr
        assert engine.containers.get("berth-hub").id == hub_id  # the hub was left alone
        container = engine.containers.get("berth-backup")
        host = container.attrs["HostConfig"]
        assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
        assert granted_capabilities(host) == set()  # CapDrop: Docker [ALL], Podman each one
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert container.attrs["NetworkSettings"]["Ports"] in ({}, None)
        # what a process inside could do: no interface but loopback, nothing to write but the
        # destination and /tmp, no capability even as root
        interfaces = container.exec_run(["ls", "/sys/class/net"]).output.decode().split()
        assert interfaces == ["lo"], interfaces
        assert container.exec_run(["touch", "/srv/berth/planted"]).exit_code != 0
        status = container.exec_run(["cat", "/proc/self/status"]).output.decode()
        assert "CapEff:\t0000000000000000" in status, status
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            state = scheduled_state(destination)
            logs = container.logs().decode(errors="replace")
            if logs.count("berth-backup: wrote ") >= 3 or state.get("last_error"):
                break
            time.sleep(3)
        assert not state.get("last_error"), logs
        assert logs.count("berth-backup: wrote ") >= 3, logs
        assert "deleted the older backup" in logs
        archives = sorted(destination.glob("berth-backup-*.tar.gz"))
        assert len(archives) == 2, archives  # the older ones pruned to keep
        assert not list(destination.glob(".*.partial"))
        assert state["last_archive"] in [p.name for p in archives]
        for path in archives:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        check = restore(dep, str(archives[-1]), "--check")
        assert check.returncode == 0 and "intact" in check.stderr, check.stderr
        with tarfile.open(archives[-1]) as tar:
            assert "hub/database.sqlite" in tar.getnames()
        shown = dep.berth("status")
        assert shown.returncode == 0, shown.stderr
        said = shown.stdout + shown.stderr
        assert "berth-backup: running" in said and "backup: last at " in said, said
    finally:
        del dep.config["backup"]
        dep.write_config()
        stopped_again = dep.berth("up")
    assert stopped_again.returncode == 0, stopped_again.stderr
    assert "removing berth-backup" in stopped_again.stdout + stopped_again.stderr
    assert not engine.containers.list(all=True, filters={"name": "^berth-backup$"})
    # A user named "backup" has a server called berth-backup (the default name template):
    # `berth up` without backups removes only the berth-backup it made.
    namesake = engine.containers.create("berth/hub:latest", ["true"], name="berth-backup")
    try:
        again = dep.berth("up")
        assert again.returncode == 0, again.stderr
        namesake.reload()  # raises NotFound if it was removed
    finally:
        namesake.remove(force=True)
