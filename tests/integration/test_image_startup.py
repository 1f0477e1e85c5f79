"""The notebook image's start machinery, observed from outside as a user would observe it.

Each test names the container scenarios it uses (`@containers(...)`); the first test of the module
starts every scenario the selected tests need, so that the containers boot in parallel while the
tests look at them one after another. Servers are reached on 127.0.0.1 published ports only, and
every container is removed at the end (see conftest.run_container_module).

The image is BERTH_TEST_IMAGE (default berth/base-notebook:latest).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import ssl
import zipfile

import pytest
from image_fleet import BOOT_TIMEOUT, Fleet, http_get, server_process, tar_of
from image_scenarios import BAD_SERVER_VALUES, BAD_VALUES
from kernel_client import KernelClient
from polling import wait_until

pytestmark = pytest.mark.integration
containers = pytest.mark.containers


# --- a plain `docker run` -------------------------------------------------------------------


@containers("default")
def test_token_is_required_and_printed_in_the_log(fleet: Fleet) -> None:
    server = fleet.server("default")
    assert re.search(r"http://127\.0\.0\.1:8888/lab\?token=[0-9a-f]{32,}", server.logs())
    status, _, _ = http_get(server.base_url + "api/status")
    assert status == 403
    status, headers, _ = http_get(server.base_url + "lab")
    assert status in (301, 302) and "/login" in headers["Location"]
    status, _, body = http_get(server.base_url + "api/status", token=server.token)
    assert status == 200 and "started" in json.loads(body)
    status, _, _ = http_get(server.base_url + f"lab?token={server.token}")
    assert status == 200


@containers("default")
def test_pid_1_is_tini_and_the_server_runs_as_jovyan(fleet: Fleet) -> None:
    server = fleet.server("default")
    pid1 = next(p for p in server.processes() if p["pid"] == 1)
    assert os.path.basename(pid1["argv"][0]) == "tini", pid1
    lab = server_process(server)
    assert (lab["user"], lab["uid"], lab["gid"]) == ("jovyan", 1000, 100)


@containers("default")
def test_healthcheck_becomes_healthy(fleet: Fleet) -> None:
    server = fleet.server("default")
    wait_until(lambda: server.health() == "healthy", BOOT_TIMEOUT, "a healthy container")


def tiny_wheel(name: str, version: str, source: str) -> tuple[str, bytes]:
    """A pure-Python wheel of one module, built in memory (no network, no build backend)."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": source.encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        ),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: berth-tests\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        for path, data in files.items():
            wheel.writestr(path, data)
    return f"{name}-{version}-py3-none-any.whl", buffer.getvalue()


@containers("default")
def test_pip_install_in_a_notebook_lands_in_the_kernels_environment(fleet: Fleet) -> None:
    server = fleet.server("default")
    filename, wheel = tiny_wheel("berth_probe", "1.0", "ANSWER = 42\n")
    assert server.container.put_archive("/", tar_of({f"/tmp/wh/{filename}": (wheel, 0o644)}))
    with KernelClient(server.base_url, server.token, timeout=90) as kernel:
        install = kernel.execute("!pip install --no-index --find-links /tmp/wh berth_probe")
        assert install.ok, install.describe()
        check = kernel.execute(
            "import berth_probe, sys\nprint(berth_probe.ANSWER, berth_probe.__file__, sys.prefix)"
        )
        assert check.ok, check.describe() + "\n--- pip said:\n" + install.describe()
    answer, module_file, prefix = check.stdout.split()
    assert answer == "42"
    assert module_file.startswith(prefix + "/"), check.stdout


# --- HTTPS ------------------------------------------------------------------------------------


@containers("https")
def test_gen_cert_serves_https_with_a_self_signed_certificate(fleet: Fleet) -> None:
    x509 = pytest.importorskip("cryptography.x509")
    server = fleet.server("https")
    assert server.base_url.startswith("https://")
    status, _, _ = http_get(server.base_url + "api/status", token=server.token)
    assert status == 200
    pem = ssl.get_server_certificate(("127.0.0.1", server.host_port()))
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)  # signed by its own key
    code, output = server.exec(["sh", "-c", "stat -c '%a %U' ~/.local/share/jupyter/notebook.key"])
    assert code == 0 and output.split() == ["600", "jovyan"], output
    wait_until(lambda: server.health() == "healthy", BOOT_TIMEOUT, "a healthy HTTPS container")


# --- hooks -------------------------------------------------------------------------------------


@containers("hooks")
def test_hooks_run_in_order_and_sourced_ones_set_the_environment(fleet: Fleet) -> None:
    status, run = fleet.finished("hooks")
    assert status == 0, run.logs()
    assert run.stdout().splitlines() == [
        "hook 10-first.sh as 0",
        "hook 20-second as 0",
        "hook 10-before.sh as 0 sees exported",
        "command sees exported",
    ]
    assert re.search(
        r"^INFO\[.*\] Ignoring non-executable: /usr/local/bin/start-notebook\.d/30-notes\.txt$",
        run.logs(),
        re.MULTILINE,
    ), run.logs()


@containers("hook-fails", "executable-hook-fails")
def test_a_failing_hook_is_logged_and_the_start_goes_on(fleet: Fleet) -> None:
    """docker-stacks' rule (hooks written for its images rely on it): an error naming the hook,
    then the next hooks and the command."""
    status, run = fleet.finished("hook-fails")
    assert status == 0, run.logs()
    assert run.stdout().splitlines() == [
        "hook 10-ok.sh",
        "hook 20-broken.sh",
        "hook 30-after.sh",
        "command ran",
    ]
    assert re.search(
        r"^ERROR\[[^]]*\] /usr/local/bin/start-notebook\.d/20-broken\.sh has failed, "
        r"continuing execution$",
        run.logs(),
        re.MULTILINE,
    ), run.logs()
    status, run = fleet.finished("executable-hook-fails")
    assert status == 0 and run.stdout().splitlines() == ["command ran"], run.logs()
    assert re.search(r"^ERROR\[.*/50-exits-7 has failed", run.logs(), re.MULTILINE), run.logs()


# --- bad values --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(f"bad-{name}-{i}", marks=containers(f"bad-{name}-{i}"), id=f"{name}={value}")
        for i, (name, value, _) in enumerate(BAD_VALUES)
    ],
)
def test_bad_values_stop_the_start_before_anything_runs(fleet: Fleet, scenario: str) -> None:
    status, run = fleet.finished(scenario)
    name = next(iter(run.scenario.env))
    logs = run.logs()
    assert status != 0, logs
    assert logs.splitlines()[-1].startswith("FATAL[") and f"{name}=" in logs.splitlines()[-1], logs
    assert "Running hooks" not in logs and "Executing" not in logs, logs


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(
            f"bad-server-{name}-{i}",
            marks=containers(f"bad-server-{name}-{i}"),
            id=f"{name}={value}",
        )
        for i, (name, value) in enumerate(BAD_SERVER_VALUES)
    ],
)
def test_bad_server_settings_stop_the_start(fleet: Fleet, scenario: str) -> None:
    status, run = fleet.finished(scenario)
    name = next(iter(run.scenario.env))
    logs = run.logs()
    assert status != 0, logs
    assert f"{name}=" in logs.splitlines()[-1] or f"{name} " in logs.splitlines()[-1], logs
    assert "Executing: " not in logs, logs  # start-notebook.py never got to run the server


# --- commands and ports ------------------------------------------------------------------------


@containers("singleuser")
def test_jupyterhub_api_token_switches_to_singleuser(fleet: Fleet) -> None:
    # There is no hub to talk to: seeing jupyterhub-singleuser start is the point.
    running = fleet.running["singleuser"]
    wait_until(
        lambda: "Starting jupyterhub single-user server" in running.logs(),
        BOOT_TIMEOUT,
        "jupyterhub-singleuser to start",
    )
    logs = running.logs()
    assert "Executing: jupyterhub-singleuser" in logs, logs
    assert "Executing: jupyter lab" not in logs, logs


@containers("singleuser-sh")
def test_start_singleuser_sh_passes_notebook_args_then_arguments(fleet: Fleet) -> None:
    running = fleet.running["singleuser-sh"]
    wait_until(
        lambda: "Starting jupyterhub single-user server" in running.logs(),
        BOOT_TIMEOUT,
        "jupyterhub-singleuser to start",
    )
    logs = running.logs()
    assert "Executing: jupyterhub-singleuser --ServerApp.log_level=DEBUG --debug" in logs, logs


@containers("cmd-server")
def test_docker_stacks_jupyter_cmd_server(fleet: Fleet) -> None:
    server = fleet.server("cmd-server")
    assert "Executing: jupyter server" in server.logs()
    assert server_process(server)["user"] == "jovyan"
    status, _, _ = http_get(server.base_url + "api/status", token=server.token)
    assert status == 200


@containers("cmd-notebook")
def test_docker_stacks_jupyter_cmd_notebook(fleet: Fleet) -> None:
    server = fleet.server("cmd-notebook")
    assert "Executing: jupyter notebook" in server.logs()
    server_process(server)
    status, _, body = http_get(server.base_url + "tree", token=server.token)
    assert status == 200, body[:500]


@containers("port-base-url")
def test_jupyter_port_and_notebook_args(fleet: Fleet) -> None:
    server = fleet.server("port-base-url")
    assert server.base_url.endswith("/berth/")
    status, _, _ = http_get(server.base_url + "api/status", token="berth-test-token")
    assert status == 200
    status, _, _ = http_get(server.base_url + "api/status", token="wrong-token")
    assert status == 403
    wait_until(
        lambda: server.health() == "healthy",
        BOOT_TIMEOUT,
        "a healthy container (port 9999, /berth/)",
    )


@containers("restartable")
def test_restartable_restarts_the_server(fleet: Fleet) -> None:
    server = fleet.server("restartable")
    first = server_process(server)["pid"]
    code, output = server.exec(["bash", "-c", f"kill -TERM {first}"])
    assert code == 0, output

    def restarted() -> bool:
        pids = [
            p["pid"]
            for p in server.processes()
            if any(os.path.basename(arg) == "jupyter-lab" for arg in p["argv"][:2])
        ]
        if not pids or first in pids:
            return False
        try:
            return http_get(server.base_url + "api")[0] == 200
        except OSError:
            return False

    wait_until(restarted, BOOT_TIMEOUT, "the server to come back")
    server.container.reload()
    assert server.container.status == "running"
    assert server.logs().count("starting it again") == 1
    # `docker stop` still stops it: the loop ends on SIGTERM instead of restarting. Had it
    # restarted, the engine would SIGKILL it after the grace period: status 137.
    server.container.stop(timeout=20)
    assert server.container.wait(timeout=5)["StatusCode"] in (0, 143)
    assert server.logs().count("starting it again") == 1
