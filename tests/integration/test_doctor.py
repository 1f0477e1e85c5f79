"""`berth doctor` against things broken on purpose, on the real engine, without breaking the
shared engine itself: a missing socket (DOCKER_HOST), the real socket without permission (as
`nobody`), a socket nobody listens on, a "hub" on a network of this test's own that listens on
127.0.0.1 only (the classic hub_connect_ip mistake) or has a name that does not resolve, an
image without jupyterhub-singleuser, a root-owned volume, an expired certificate and a full
disk (a small tmpfs). Everything made here is named berth-ops-doctor-… and removed."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from run_once import run_once

from berth import tls
from berth.config.load import load_config
from berth.doctor import certificate, checks, facts, hub_checks, probes

pytestmark = pytest.mark.integration

PREFIX = "berth-ops-doctor"
HUB_IMAGE = "berth/hub:latest"
NETWORK = f"{PREFIX}-net"


def doctor(cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "berth", "doctor"],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_no_engine_is_one_plain_failure_with_the_fix(tmp_path):
    missing = f"unix://{tmp_path}/no-such-docker.sock"
    result = doctor(tmp_path, DOCKER_HOST=missing)
    assert result.returncode == 1, result.stderr
    assert f"FAIL engine: no Docker engine at {missing}: the socket does not exist" in (
        result.stderr
    )
    assert "fix: install and start Docker" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_socket_nobody_listens_on(tmp_path):
    path = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound, never listening: connections are refused
        result = doctor(tmp_path, DOCKER_HOST=f"unix://{path}")
    assert result.returncode == 1
    assert "refuses connections (dockerd is not running)" in result.stderr


def test_no_permission_on_the_engine_socket():
    """The real socket (root:docker, 660), used by `nobody`: refused by the kernel, not by us."""
    code = (
        "from berth.doctor import facts, checks; "
        "print(checks.check_engine(facts.engine_facts()[1]))"
    )
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "DOCKER_HOST"},
    )
    assert result.returncode == 0, result.stderr
    assert "status='fail'" in result.stdout and "permission denied on its socket" in result.stdout


@pytest.fixture(scope="module")
def network(engine):
    # What a run killed midway left (its containers first: a network with one is not removed).
    for container in engine.containers.list(all=True, filters={"name": PREFIX}):
        container.remove(force=True)
    for old in engine.networks.list(names=[NETWORK]):
        if old.name == NETWORK:
            old.remove()
    net = engine.networks.create(NETWORK, driver="bridge", labels={"berth-ops.test": "doctor"})
    yield NETWORK
    for container in engine.containers.list(all=True, filters={"name": PREFIX}):
        container.remove(force=True)
    net.remove()


FAKE_HUB = "mkdir -p /tmp/w/hub/api && cd /tmp/w && exec python3 -m http.server 8081 --bind {bind}"


def fake_hub(engine, network: str, name: str, bind: str):
    """A stand-in hub: answers 200 at /hub/api/ on port 8081, bound to `bind`."""
    container = engine.containers.run(
        HUB_IMAGE,
        entrypoint=["sh", "-c", FAKE_HUB.format(bind=bind)],
        name=name,
        network=network,
        detach=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
    )
    check = f"import urllib.request as u; u.urlopen('http://{bind}:8081/hub/api/', timeout=2)"
    deadline = time.monotonic() + 120  # by the clock: each try's own length varies with load
    while time.monotonic() < deadline:
        if container.exec_run(["python3", "-c", check]).exit_code == 0:
            return container
        container.reload()
        if container.status != "running":
            break
        time.sleep(0.2)
    raise AssertionError(
        f"{name} does not answer ({container.status}):\n{container.logs().decode()}"
    )


def test_the_hub_seen_from_a_user_container(engine, network):
    good = fake_hub(engine, network, f"{PREFIX}-good-hub", "0.0.0.0")
    local = fake_hub(engine, network, f"{PREFIX}-local-hub", "127.0.0.1")
    try:
        reach = {
            name: probes.hub_reach(engine, HUB_IMAGE, network, f"http://{name}:8081/hub/api/")
            for name in (good.name, local.name, f"{PREFIX}-nowhere")
        }
    finally:
        good.remove(force=True)
        local.remove(force=True)
    assert reach[good.name].outcome == "ok", reach
    assert hub_checks.check_hub_reachable(reach[good.name]).status == "ok"
    refused = hub_checks.check_hub_reachable(reach[local.name])
    assert reach[local.name].outcome == "refused" and refused.status == "fail", reach
    assert "hub_ip = '0.0.0.0'" in refused.fix
    assert reach[f"{PREFIX}-nowhere"].outcome == "dns", reach


def test_an_image_without_jupyterhub_singleuser(engine):
    without = probes.singleuser_version(engine, "berth/foundation:latest")
    found = hub_checks.check_image(without, "6.1.1", "5.5.4")
    assert found.status == "fail" and "has no jupyterhub-singleuser" in found.summary, found
    good = probes.singleuser_version(engine, "berth/base-notebook:latest")
    assert hub_checks.check_image(good, "6.1.1", "5.5.4").status == "ok", good
    missing = probes.singleuser_version(engine, "berth-ops-doctor/none:latest")
    absent = hub_checks.check_image(missing, "6.1.1", "5.5.4")
    assert absent.summary.startswith("not on this engine"), absent


def test_a_volume_the_notebook_user_cannot_write(engine):
    rooted, handed = f"{PREFIX}-vol-rooted", f"{PREFIX}-vol-handed"
    for name in (rooted, handed):
        engine.volumes.create(name, labels={"berth-ops.test": "doctor"})
    try:
        # Both owners set by hand: Podman gives a volume's root, at its first mount, the owner
        # of the mount point (the probe's user here), so a volume never mounted is not "rooted"
        # there as it is on Docker.
        for name, owner in ((rooted, "0:0"), (handed, "1000:100")):
            run_once(
                engine,
                HUB_IMAGE,
                entrypoint=["chown", owner, "/v"],
                user="0",
                volumes={name: {"bind": "/v", "mode": "rw"}},
                network_mode="none",
            )
        owners = probes.volume_owners(engine, HUB_IMAGE, [rooted, handed])
    finally:
        for name in (rooted, handed):
            engine.volumes.get(name).remove(force=True)
    assert [(v.name, v.uid, v.gid) for v in owners.volumes] == [
        (rooted, 0, 0),
        (handed, 1000, 100),
    ]
    found = hub_checks.check_volumes(owners)
    assert found.status == "fail" and rooted in found.summary and handed not in found.summary


def test_an_expired_operator_certificate(tmp_path):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=tls.VALID_DAYS + 30)
    pair = tls.self_signed(["hub.example.org"], now=old)
    (tmp_path / "cert.pem").write_bytes(pair.cert_pem)
    (tmp_path / "key.pem").write_bytes(pair.key_pem)
    (tmp_path / "key.pem").chmod(0o600)
    config = {"tls": {"cert": "cert.pem", "key": "key.pem"}}
    (tmp_path / "berth.yaml").write_text(yaml.safe_dump(config))
    cfg = load_config(tmp_path / "berth.yaml")
    found = certificate.check_certificate(facts.certificate_facts(None, cfg))
    assert found.status == "fail" and "expired on" in found.summary, found


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "berth-ops-doctor", str(mount)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk(small_disk):
    engine = checks.EngineFacts("unix:///var/run/docker.sock", root_dir=str(small_disk))
    empty = facts.disk_facts(engine)
    assert empty.total == 4 * 2**20 and empty.free == empty.total
    (small_disk / "fill").write_bytes(b"\0" * (3 * 2**20))
    full = facts.disk_facts(engine)
    assert full.free is not None and full.free <= 2**20
    found = checks.check_disk(full)
    assert found.status == "fail" and "spawns, builds and the hub database will fail" in (
        found.summary
    )


def test_a_deployment_then_its_hub_cut_off_and_a_volume_handed_to_root(hub_deployment, engine):
    """On a real `berth up`: every service check passes; then the hub leaves the users'
    network (user servers can no longer resolve it) and alice's volume is handed to root,
    and doctor names both, with their fixes."""
    dep = hub_deployment
    dep.berth("users", "add", "alice")
    dep.start_server("alice")
    dep.stop_server("alice")
    healthy = dep.berth("doctor")
    for line in (
        "ok   hub-from-user: a container on the users' network reaches "
        "http://berth-hub:8081/hub/api/",
        "ok   image berth/base-notebook:latest: jupyterhub-singleuser 5.5.4",
        "ok   volumes: 1 user volume(s), each writable by 1000",
        "ok   certificate: the self-signed certificate expires",
    ):
        assert line in healthy.stderr, healthy.stderr
    volume = dep.config["storage"]["volume_name_template"].format(username="alice")
    run_once(
        engine,
        HUB_IMAGE,
        entrypoint=["chown", "0:0", "/v"],
        user="0",
        volumes={volume: {"bind": "/v", "mode": "rw"}},
        network_mode="none",
    )
    engine.networks.get(dep.config["network"]).disconnect("berth-hub")
    broken = dep.berth("doctor")
    assert broken.returncode == 1, broken.stderr
    assert "FAIL hub-from-user: http://berth-hub:8081/hub/api/: the host name does not " in (
        broken.stderr
    )
    assert f"FAIL volumes: the notebook user (1000:100) cannot write to {volume} (0:0, " in (
        broken.stderr
    )
