"""A server's start in a real base-notebook container (issue 9: the burst's CPU, idle memory).

A server's start collects garbage less often and takes its regular expressions' compiled code
from the cache the build wrote, until the server runs; other Python processes (kernels, tools)
are left alone. A probe config file beside the image's own reads the server's state once it
answers. The image is BERTH_TEST_IMAGE (default berth/base-notebook:latest).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from image_fleet import BOOT_TIMEOUT, http_get, published_base
from polling import wait_until

pytestmark = pytest.mark.integration

TOKEN = "start-pause-test-token-not-secret"
# Runs in the server (JUPYTER_CONFIG_PATH), after the image's /etc/jupyter config is loaded.
PROBE = r"""
import gc, json, sys
from tornado.ioloop import IOLoop
def _berth_probe():
    start = sys.modules.get("berth_server_start")
    state = {
        "loaded": start is not None,
        "paused": None if start is None else start.paused,
        "hits": 0 if start is None else start.hits,
        "cache dropped": start is None or start._cache is None,
        "threshold": gc.get_threshold(),
        "IPython at start": "IPython" in sys.modules,
    }
    # What notebook_shim proxies onto the server still gives the classic app's value (read
    # now, so IPython is imported now).
    from jupyter_server.serverapp import ServerApp
    from notebook_shim.traits import NotebookAppTraits
    state["nbextensions_path"] = ServerApp.instance().nbextensions_path
    state["classic nbextensions_path"] = NotebookAppTraits().nbextensions_path
    with open("/tmp/berth-probe/state.json", "w") as out:
        json.dump(state, out)
IOLoop.current().call_later(0.5, _berth_probe)
"""
# Fewer would mean the cache was ignored (another interpreter) or the recording missed the
# start's patterns: the start then compiles them again (~35-40 ms of CPU at every start).
MIN_CACHED_PATTERNS = 200


@pytest.fixture(scope="module")
def server_state(run_container_module: Any) -> dict[str, Any]:
    container = run_container_module(
        command=[
            "sh",
            "-c",
            'mkdir -p /tmp/berth-probe && printf %s "$PROBE" > '
            "/tmp/berth-probe/jupyter_server_config.py && exec start-notebook.py "
            f"--IdentityProvider.token={TOKEN}",
        ],
        environment={"PROBE": PROBE, "JUPYTER_CONFIG_PATH": "/tmp/berth-probe"},
        ports={"8888/tcp": ("127.0.0.1", None)},
    )

    base = wait_until(lambda: published_base(container), 30, "a published port")

    def status() -> bool:
        try:
            return http_get(f"{base}/api/status", TOKEN)[0] == 200
        except OSError:
            return False

    wait_until(status, BOOT_TIMEOUT, "the server to answer /api/status")

    def state() -> dict[str, Any] | None:
        code, output = container.exec_run(["cat", "/tmp/berth-probe/state.json"], user="1000")
        return json.loads(output) if code == 0 and output else None

    found = wait_until(state, 30, "the probe's report")
    found["container"] = container
    return found


def test_the_start_takes_its_regular_expressions_from_the_build(server_state: Any) -> None:
    """Fails on main before this change (no berth_server_start): every start parsed and
    compiled its ~320 patterns in pure Python."""
    assert server_state["loaded"]
    assert server_state["hits"] >= MIN_CACHED_PATTERNS, server_state


def test_the_pause_ends_once_the_server_runs(server_state: Any) -> None:
    """Python's own collector thresholds are back and the cache's memory is released."""
    assert server_state["paused"] is None
    assert server_state["threshold"] == [700, 10, 10]
    assert server_state["cache dropped"]


def test_the_start_imports_no_ipython(server_state: Any) -> None:
    """Fails on main before this change: notebook_shim's link step evaluated the classic app's
    `nbextensions_path`, which imports IPython (~25 ms, 2.5 MiB) at every start."""
    assert server_state["IPython at start"] is False


def test_the_proxied_nbextensions_path_is_the_classic_apps(server_state: Any) -> None:
    """notebook_shim's proxy still answers with the classic app's value, IPython's directory
    included, once read."""
    path = server_state["nbextensions_path"]
    assert path == server_state["classic nbextensions_path"]
    assert path[-1].endswith("/.ipython/nbextensions"), path


def test_other_python_processes_are_left_alone(server_state: Any) -> None:
    """A kernel or a tool run with the venv's Python keeps Python's defaults."""
    script = (
        "import gc, re, sys; from re import _compiler; m = sys.modules['berth_server_start']; "
        "print(m.paused, gc.get_threshold(), _compiler.compile is m._compile_cached)"
    )
    code, output = server_state["container"].exec_run(["python", "-c", script], user="1000")
    assert code == 0, output
    assert output.decode().split("\n")[0] == "None (700, 10, 10) False"
