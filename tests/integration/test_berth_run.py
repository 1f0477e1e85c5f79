"""`berth run` end to end: the real command, a real container, real HTTP, Ctrl-C clean-up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
import requests
import urllib3
from engine_reports import granted_capabilities
from loopback_ports import free_port

pytestmark = pytest.mark.integration

BERTH = [sys.executable, "-m", "berth"]
IMAGE = os.environ.get("BERTH_TEST_IMAGE", "berth/base-notebook:latest")


def berth(*args: str, cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*BERTH, *args], capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
    )


def remove_test_runs(client: docker.DockerClient) -> None:
    for container in client.containers.list(all=True, filters={"label": "berth.run"}):
        if container.name.startswith("berth-test-run"):
            container.remove(force=True)


@pytest.fixture
def engine():
    client = docker.from_env()
    remove_test_runs(client)  # a killed run's too: the names are fixed
    yield client
    remove_test_runs(client)
    client.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    directory.mkdir()
    os.chown(directory, 1234, 2345)
    return directory


def test_detached_run_serves_with_token_and_files_belong_to_the_owner(engine, project):
    port, name = free_port(), "berth-test-run-detached"
    result = berth("run", IMAGE, "--port", str(port), "--name", name, "--detach", cwd=project)
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip().splitlines()[-1]
    assert url.startswith(f"http://127.0.0.1:{port}/lab?token=")
    token = url.split("token=", 1)[1]
    base = f"http://127.0.0.1:{port}"

    assert requests.get(f"{base}/api/status", timeout=10).status_code == 403
    headers = {"Authorization": f"token {token}"}
    assert requests.get(f"{base}/api/status", headers=headers, timeout=10).status_code == 200

    created = requests.put(
        f"{base}/api/contents/work/made-in-jupyter.txt",
        json={"type": "file", "format": "text", "content": "hello"},
        headers=headers,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    made = project / "made-in-jupyter.txt"
    assert made.read_text() == "hello"
    assert (made.stat().st_uid, made.stat().st_gid) == (1234, 2345)

    # Published on loopback only, with no capabilities and no new privileges.
    attrs = engine.containers.get(name).attrs
    assert attrs["HostConfig"]["PortBindings"]["8888/tcp"][0]["HostIp"] == "127.0.0.1"
    assert granted_capabilities(attrs["HostConfig"]) == set()
    assert "no-new-privileges" in attrs["HostConfig"]["SecurityOpt"]

    listed = berth("run", "--list")
    assert name in listed.stdout and str(port) in listed.stdout

    stopped = berth("run", "--stop", name)
    assert stopped.returncode == 0, stopped.stderr
    assert name not in [c.name for c in engine.containers.list(all=True)]


def test_https_run_uses_a_generated_certificate(engine, project):
    port, name = free_port(), "berth-test-run-https"
    result = berth("run", IMAGE, "--https", "--port", str(port), "--name", name, "-d", cwd=project)
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip().splitlines()[-1]
    assert url.startswith(f"https://127.0.0.1:{port}/lab?token=")
    token = url.split("token=", 1)[1]
    with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
        answer = requests.get(
            f"https://127.0.0.1:{port}/api/status",
            headers={"Authorization": f"token {token}"},
            verify=False,
            timeout=10,
        )
    assert answer.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://127.0.0.1:{port}/api/status", timeout=10)


def test_ctrl_c_stops_and_removes_the_container(engine, project, tmp_path):
    port, name = free_port(), "berth-test-run-foreground"
    log = tmp_path / "berth-run.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [*BERTH, "run", IMAGE, "--port", str(port), "--name", name],
            cwd=project,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            if "Jupyter is ready" in log.read_text():
                break
            time.sleep(0.2)
        assert "Jupyter is ready" in log.read_text(), log.read_text()
        assert engine.containers.get(name).status == "running"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert f"removed {name}" in log.read_text()
    assert name not in [c.name for c in engine.containers.list(all=True)]


def test_busy_port_and_bad_input_are_clear_errors(engine, project):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = berth(
            "run", IMAGE, "--port", str(port), "--name", "berth-test-run-busy", "-d", cwd=project
        )
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    bad_name = berth("run", IMAGE, "--name", "no/slashes", cwd=project)
    assert bad_name.returncode == 1 and "invalid container name" in bad_name.stderr
    missing = berth("run", IMAGE, "--mount", str(project / "absent"))
    assert missing.returncode == 1 and "is not a directory" in missing.stderr
