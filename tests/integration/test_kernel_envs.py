"""berth-kernel in a real server through a hub: a Python environment of the user's own becomes a
kernel, `!pip install` and `%pip install` in it land in it (and not in the default kernel), and
it is still there after the server is stopped and started again (it lives in the volume).

Installs ipykernel and two small wheels from PyPI into the environment (about a minute here).
Fails on main before this change: base-notebook has no berth-kernel there."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest
import websocket
from hub_harness import Hub
from hub_marks import HUB_MARKS
from kernel_client import ExecutionResult, JupyterAPI, KernelClient

pytestmark = HUB_MARKS

SPAWNER_CONFIG = """
c.ContainerSpawner.image = "{image}"
c.ContainerSpawner.prefix = "{prefix}"
c.ContainerSpawner.pull_policy = "never"
c.ContainerSpawner.volumes = {{"{{prefix}}-user-{{username}}": "/home/jovyan/work"}}
c.Spawner.notebook_dir = "/home/jovyan/work"
"""
ENV = "/home/jovyan/work/.envs/tools"
WHERE = "import sys, tomli_w, cowsay; print(sys.prefix, tomli_w.__file__, cowsay.__file__)"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(tmp_path_factory.mktemp("hub"), SPAWNER_CONFIG)
    try:
        yield h.start()
    finally:
        h.cleanup()


def kernel(hub: Hub, name: str = "python3") -> KernelClient:
    return KernelClient(hub.user_url("kim"), hub.token, kernel_name=name, timeout=120)


def kernel_names(hub: Hub) -> dict[str, str]:
    status, body = JupyterAPI(hub.user_url("kim"), hub.token).request("GET", "api/kernelspecs")
    assert status == 200, body
    return {n: s["spec"]["display_name"] for n, s in body["kernelspecs"].items()}


def test_an_environment_of_ones_own_is_a_kernel_that_pip_installs_into(hub: Hub) -> None:
    hub.spawn("kim")
    first_container = hub.container("kim").id
    with kernel(hub) as default:
        made = default.execute("!berth-kernel create tools", timeout=600)
        assert made.ok and "[3/3] Registering the kernel" in made.stdout, made.describe()
    assert kernel_names(hub)["tools"] == "Python (tools)"

    with kernel(hub, "tools") as tools:
        for cell in ("!pip install -q tomli-w", "%pip install -q cowsay"):
            installed = tools.execute(cell, timeout=300)
            assert installed.ok, installed.describe()
        where = tools.execute(WHERE)
        assert where.ok, where.describe()
        prefix, tomli_file, cowsay_file = where.stdout.split()
        assert prefix == ENV
        assert tomli_file.startswith(f"{ENV}/lib/") and cowsay_file.startswith(f"{ENV}/lib/")
        which = tools.execute("!which pip python")
        assert which.stdout.split() == [f"{ENV}/bin/pip", f"{ENV}/bin/python"], which.describe()

    with kernel(hub) as default:
        for module in ("tomli_w", "cowsay"):
            missing = default.execute(f"import {module}")
            assert missing.error and missing.error["ename"] == "ModuleNotFoundError", module

    # stopped (the container is removed) and started again: the kernel and its packages remain
    hub.stop("kim")
    hub.spawn("kim")
    assert hub.container("kim").id != first_container
    assert kernel_names(hub)["tools"] == "Python (tools)"
    with kernel(hub, "tools") as tools:
        again = tools.execute(WHERE)
        assert again.ok and again.stdout.split()[0] == ENV, again.describe()
    with kernel(hub) as default:
        listed = default.execute("!berth-kernel list")
        assert listed.stdout.split() == ["tools", ENV], listed.describe()


LANGUAGE_HOME = "/home/jovyan/work/.envs/.languages/deno"


def deno_kernel_running(hub: Hub) -> bool:
    """Whether the installed Deno runs as a kernel in lee's server (by the processes' argv)."""
    script = f"""
import glob
for path in glob.glob('/proc/[0-9]*/cmdline'):
    try:
        argv = open(path, 'rb').read().split(b'\\0')
    except OSError:
        continue
    if argv[:3] == [b'{LANGUAGE_HOME}/bin/deno', b'jupyter', b'--kernel']:
        print('running')
"""
    result = hub.container("lee").exec_run(["python", "-c", script])
    return b"running" in result.output


def test_a_language_not_in_the_image_installs_itself_on_first_use(hub: Hub) -> None:
    """The launcher's Deno kernel installs Deno into the volume on its first start, with the
    progress in the cell, restarts as Deno, and later starts are Deno at once."""
    hub.spawn("lee")
    base = hub.user_url("lee")
    status, body = JupyterAPI(base, hub.token).request("GET", "api/kernelspecs")
    assert status == 200, body
    assert body["kernelspecs"]["deno"]["spec"]["display_name"] == "Deno (installs on first use)"
    with KernelClient(base, hub.token, kernel_name="deno", timeout=600) as first:
        shown = first.execute("console.log(6 * 7)", timeout=600)
        assert shown.ok, shown.describe()
        out = shown.stdout
        assert f"Installing Deno into {LANGUAGE_HOME} (first use only)" in out, out
        assert "Downloading: 100%" in out and "Deno is installed." in out, out
        assert "restarts as Deno" in out, out
        deadline = time.monotonic() + 90  # Jupyter notices the exit and restarts the kernel
        while not deno_kernel_running(hub):
            assert time.monotonic() < deadline, "the kernel did not come back as Deno"
            time.sleep(1)
    with KernelClient(base, hub.token, kernel_name="deno", timeout=120) as later:
        typed = later.execute("const answer: number = 6 * 7; console.log(answer)", late_stdout="42")
        assert typed.ok and typed.stdout == "42\n", typed.describe()


def run_in_r(base: str, token: str, *cells: str, timeout: float = 300) -> list[ExecutionResult]:
    """The cells' results in a new R kernel, started again until one answers (within
    ``timeout``): the stand-in's exit and Jupyter's restart may outlast the first attempts.
    A kernel that does not start or answer shows up as the client's errors: a failed start
    (RuntimeError), no reply (TimeoutError), or the websocket's own (a refused upgrade, a
    receive timeout, a closed connection), which are not TimeoutErrors."""
    deadline = time.monotonic() + timeout
    while True:
        later = KernelClient(base, token, kernel_name="r", timeout=120)
        try:
            later.start()
            return [later.execute(cell) for cell in cells]
        except (RuntimeError, TimeoutError, OSError, websocket.WebSocketException) as error:
            assert time.monotonic() < deadline, f"R did not start after its installation: {error!r}"
        finally:
            with contextlib.suppress(OSError):  # a failed clean-up must not hide the result
                later.shutdown()
        time.sleep(2)


def test_r_installs_itself_from_debian_on_first_use(hub: Hub) -> None:
    """R is not in base-notebook: its launcher kernel installs R and IRkernel from Debian's
    packages into the volume as the user (no root), then runs R code."""
    hub.spawn("rosa")
    base = hub.user_url("rosa")
    home = "/home/jovyan/work/.envs/.languages/r"
    with KernelClient(base, hub.token, kernel_name="r", timeout=900) as first:
        shown = first.execute("1 + 1", timeout=900)
        assert shown.ok, shown.describe()
        out = shown.stdout
        assert f"Installing R into {home} (first use only)" in out, out
        assert "Unpacking: 100%" in out and "R is installed." in out, out
    fitted, where = run_in_r(
        base,
        hub.token,
        "cat(round(coef(lm(dist ~ speed, cars))[[2]], 3))",
        'cat(.libPaths()[1], getOption("repos")[["CRAN"]])',
    )
    assert fitted.ok and fitted.stdout == "3.932", fitted.describe()
    # install.packages() would land in the volume
    assert where.stdout == f"{home}/usr/local/lib/R/site-library https://cloud.r-project.org"
    owner = hub.container("rosa").exec_run(["stat", "-c", "%U", f"{home}/usr/lib/R/bin/R"])
    assert owner.output.decode().strip() == "jovyan"
