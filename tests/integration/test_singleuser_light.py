"""A user server spawned by a real hub: without the hub's machinery, with every hub feature.

jupyterhub-singleuser used to import the hub's database layer and page handlers (SQLAlchemy,
alembic, mako, jupyterhub.orm, jupyterhub.handlers: ~37 MiB per user server);
base-notebook's build makes those imports lazy (lazy_hub_imports.py). Here a real JupyterHub
spawns the image, a browser logs in through the hub and reaches the server by OAuth, the server
reports its activity to the hub, serves /metrics, and logs its requests; all the while a probe
(put first on PYTHONPATH in a throwaway image built FROM the image under test, no kernel
started) writes the server process's own sys.modules, so "never imported" covers the start and
the serving, not just one import.

The image is BERTH_TEST_IMAGE (default berth/base-notebook:latest).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Iterator
from datetime import datetime

import docker
import pytest
import requests
from hub_harness import Hub
from hub_marks import HUB_MARKS
from polling import wait_logged

pytestmark = HUB_MARKS

# Modules of the hub that a user server has no use for. (pygments is not among them: IPython,
# which nbclassic's notebook_shim imports at every start, loads pygments.token.)
HUB_ONLY = (
    "sqlalchemy", "alembic", "mako", "jupyterhub.orm", "jupyterhub.roles",
    "jupyterhub.handlers", "jupyterhub.user", "jupyterhub.spawner", "jupyterhub.crypto",
    "jupyterhub.app",
)  # fmt: skip

# Every Python process of the container writes, twice a second, its command line, the names
# of the modules it has loaded and the time to /tmp/berth-modules/<pid>.json.
PROBE = """
import json, os, sys, threading, time

def _berth_write_modules():
    os.makedirs("/tmp/berth-modules", exist_ok=True)
    path = f"/tmp/berth-modules/{os.getpid()}.json"
    while True:
        data = json.dumps({"argv": sys.argv, "modules": sorted(sys.modules), "time": time.time()})
        with open(path + ".tmp", "w") as out:
            out.write(data)
        os.replace(path + ".tmp", path)
        time.sleep(0.5)

threading.Thread(target=_berth_write_modules, daemon=True).start()
"""

SPAWNER_CONFIG = """
c.ContainerSpawner.image = "{image}"
c.ContainerSpawner.prefix = "{prefix}"
c.ContainerSpawner.pull_policy = "never"
c.ContainerSpawner.environment = {{"JUPYTERHUB_ACTIVITY_INTERVAL": "2"}}
"""


def is_hub_only(module: str) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in HUB_ONLY)


def probe_image(client: docker.DockerClient, base: str, tag: str) -> None:
    """`base` with PROBE as /opt/berth-probe/sitecustomize.py, first on PYTHONPATH."""
    dockerfile = (
        f"FROM {base}\nCOPY sitecustomize.py /opt/berth-probe/sitecustomize.py\n"
        "ENV PYTHONPATH=/opt/berth-probe\n"
    )
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, text in (("Dockerfile", dockerfile), ("sitecustomize.py", PROBE)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    client = docker.from_env()
    h = Hub(tmp_path_factory.mktemp("hub"), SPAWNER_CONFIG)
    tag = f"{h.prefix}-probe:latest"
    probe_image(client, h.image, tag)
    h.image = tag
    try:
        yield h.start()
    finally:
        h.cleanup()
        client.images.remove(tag, noprune=True)
        client.close()


def log_in(hub: Hub, name: str) -> tuple[requests.Session, list[str]]:
    """A browser session logged in to the hub, and the addresses its login went through."""
    browser = requests.Session()
    browser.trust_env = False
    login = browser.get(f"{hub.url}/hub/login", timeout=10)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', login.text)
    assert xsrf, login.text[:500]
    r = browser.post(
        f"{hub.url}/hub/login",
        data={"username": name, "password": "x", "_xsrf": xsrf.group(1)},
        timeout=60,
    )
    assert r.status_code == 200, r.text[:500]
    return browser, [h.headers.get("Location", "") for h in r.history]


def server_last_activity(hub: Hub, name: str) -> datetime:
    stamp = hub.user_model(name)["servers"][""]["last_activity"]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def server_modules(hub: Hub, name: str, written_after: float, timeout: float = 60) -> set[str]:
    """The modules of the container's jupyterhub-singleuser process, as its probe wrote them
    after ``written_after`` (time.time()): the probe's thread writes every half second in a
    busy process, so a fixed wait could read what it wrote before the requests."""
    deadline = time.monotonic() + timeout
    while True:
        code, output = hub.container(name).exec_run(
            ["sh", "-c", "cat /tmp/berth-modules/*.json; echo"]
        )
        assert code == 0, output
        servers = []
        for line in output.decode().replace("}{", "}\n{").splitlines():
            if line.strip():
                record = json.loads(line)
                if "jupyterhub.singleuser.extension" in record["modules"]:
                    servers.append(record)
        assert len(servers) == 1, [s["argv"] for s in servers]
        if servers[0]["time"] > written_after:
            return set(servers[0]["modules"])
        assert time.monotonic() < deadline, f"the probe wrote nothing new in {timeout} s"
        time.sleep(0.5)


def test_oauth_activity_metrics_and_no_hub_machinery(hub: Hub) -> None:
    """Fails on main before this change: the server process imports SQLAlchemy, alembic, mako,
    jupyterhub.orm and the hub's handlers (at start, through jupyterhub.log, .utils and
    .scopes)."""
    hub.spawn("ada")
    spawned = server_last_activity(hub, "ada")
    # OAuth: the login takes the browser to the running server, which sends it to the hub's
    # authorize page; the hub sends it back with a code, the server exchanges that (a request
    # to the hub's API) and sets its own cookie.
    browser, went_through = log_in(hub, "ada")
    lab = browser.get(hub.user_url("ada") + "lab", timeout=60)
    went_through += [h.headers.get("Location", "") for h in lab.history]
    assert lab.status_code == 200, lab.text[:500]
    assert lab.url == hub.user_url("ada") + "lab"
    assert any("/hub/api/oauth2/authorize?" in place for place in went_through), went_through
    assert any("/user/ada/oauth_callback?code=" in place for place in went_through), went_through
    me = browser.get(hub.user_url("ada") + "api/me", timeout=30)
    assert me.status_code == 200 and me.json()["identity"]["username"] == "ada"
    stranger = requests.get(hub.user_url("ada") + "api/me", timeout=30, allow_redirects=False)
    assert stranger.status_code in {302, 403}  # not logged in: not let through

    # Activity: a request now shows up as the server's last activity on the hub, reported by
    # the server (the proxy's activity polling is once an hour here).
    time.sleep(1)
    used = datetime.now(spawned.tzinfo)
    assert browser.get(hub.user_url("ada") + "api/contents", timeout=30).status_code == 200
    deadline = time.monotonic() + 60
    while server_last_activity(hub, "ada") < used and time.monotonic() < deadline:
        time.sleep(1)
    assert server_last_activity(hub, "ada") >= used > spawned
    assert re.search(r"POST /hub/api/users/ada/activity", (hub.workdir / "hub.log").read_text())

    # The server's /metrics, with the request metric its request logger records.
    metrics = browser.get(hub.user_url("ada") + "metrics", timeout=30)
    served = time.time()  # what the server imported to serve the requests, it has by now
    assert metrics.status_code == 200
    assert re.search(
        r'^jupyterhub_request_duration_seconds_count\{[^}]*handler="jupyter_server\.',
        metrics.text,
        re.M,
    ), metrics.text[:2000]

    # Requests are logged by the server (jupyterhub's request logger, with the user's name).
    wait_logged(hub.container("ada"), re.compile(r"200 GET /user/ada/api/contents.*\(ada@"), 60)

    modules = server_modules(hub, "ada", written_after=served)
    assert {"jupyterhub.singleuser.extension", "jupyterhub.log", "jupyterhub.metrics"} <= modules
    assert sorted(m for m in modules if is_hub_only(m)) == []
    hub.stop("ada")
