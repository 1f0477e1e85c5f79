"""The image-pull path for real: a spawn pulls its image from a registry on this machine.

The registry is Berth's own ``berth/registry`` (Debian's docker-registry package), on the test
hub's network and published on 127.0.0.1 only, over plain HTTP: Docker trusts 127.0.0.0/8 so;
Podman needs the registry marked `insecure` in its registries.conf, as scripts/start-podman.sh
does for 127.0.0.1 (docs/podman.md).
The image is ``berth/base-notebook`` plus one layer of random bytes made for this run and removed
from the host after the push, so the pull downloads it for real (the base layers are already on
the host). What is checked is Berth's own progress events on the spawn page, in order, not only
JupyterHub's final "ready": the spawn is asked for as a browser asks (logged in through the login
form, then GET /hub/spawn/<user>), and the events are read from the stream that the spawn page's
script opens (the URL in the page, with the browser's cookies).
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import os
import re
import tarfile
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import requests
from hub_harness import Hub, default_image, free_port, image_available
from hub_marks import NEEDS_IMAGE, NEEDS_PROXY

from berth.engine_kind import PODMAN, engine_kind

REGISTRY_IMAGE = "berth/registry:latest"
BALLAST = "berth-test-ballast"  # the run's own layer: a file of random bytes at /
BALLAST_BYTES = 160 * 1024**2  # random: gzip cannot shrink it, the pull moves ~168 MB

pytestmark = [
    pytest.mark.integration,
    NEEDS_IMAGE,
    pytest.mark.skipif(
        not image_available(REGISTRY_IMAGE),
        reason=f"{REGISTRY_IMAGE} not built (berth images build registry)",
    ),
    NEEDS_PROXY,
]

SPAWNER_CONFIG = """
c.ContainerSpawner.image = "{image}"
c.ContainerSpawner.prefix = "{prefix}"
c.ContainerSpawner.pull_policy = "ifnotpresent"
# Answer a spawn request at once (202) as for a slow spawn, so that the progress stream is
# followed from the start, as the spawn page does.
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}

def pre_spawn_hook(spawner):
    if spawner.user.name == "no-such-tag":
        spawner.image = "{image}".rsplit(":", 1)[0] + ":never-pushed"
        spawner.allowed_images = []

c.ContainerSpawner.pre_spawn_hook = pre_spawn_hook
"""


def wait_registry(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/v2/", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise AssertionError(f"the registry at {url} did not answer within {timeout} s")


def ballast_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(BALLAST)
        info.size, info.mode = BALLAST_BYTES, 0o644
        tar.addfile(info, io.BytesIO(os.urandom(BALLAST_BYTES)))
    return buffer.getvalue()


def push(client: docker.DockerClient, base: str, target: str, label: str) -> None:
    """``base`` + the ballast layer, committed as ``target``, pushed, then removed from here."""
    repository, tag = target.rsplit(":", 1)
    maker = client.containers.create(base, name=f"{label}-ballast", labels={label: "ballast"})
    try:
        assert maker.put_archive("/", ballast_archive())
        maker.commit(repository=repository, tag=tag)
    finally:
        maker.remove(force=True)
    records = list(client.images.push(repository, tag=tag, stream=True, decode=True))
    errors = [r["error"] for r in records if "error" in r]
    # "server gave HTTP response to HTTPS client": the engine does not take the registry over
    # plain HTTP. Docker does for 127.0.0.0/8; Podman where registries.conf says `insecure`
    # (scripts/podman/registries.conf, docs/podman.md).
    assert not errors, errors
    client.images.remove(target)  # the run's own layer goes with it: the pull must fetch it
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(target)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    port = free_port()
    registry_url = f"http://127.0.0.1:{port}"
    h = Hub(tmp_path_factory.mktemp("pull-hub"), SPAWNER_CONFIG)
    # Named after the run, so that its image is one no other run or person ever pulled.
    h.image = f"127.0.0.1:{port}/{h.prefix}/notebook:1"
    client = docker.from_env()
    registry = None
    try:
        h.start()
        registry = client.containers.run(
            REGISTRY_IMAGE,
            name=f"{h.prefix}-registry",
            network=h.network_name,
            ports={"5000/tcp": ("127.0.0.1", port)},
            labels={"berth-test": h.prefix},
            detach=True,
        )
        wait_registry(registry_url)
        push(client, default_image(), h.image, h.prefix)
        yield h
    finally:
        if registry is not None:
            with contextlib.suppress(docker.errors.NotFound):
                registry.remove(force=True, v=True)  # and its anonymous storage volume
        h.cleanup()
        for name in (h.image, h.image.rsplit(":", 1)[0] + ":never-pushed"):
            # (Podman answers the removal of a missing image with "image not known", which
            # the SDK raises as NotFound, not as its subclass ImageNotFound.)
            with contextlib.suppress(docker.errors.NotFound):
                client.images.remove(name, force=True)
        client.close()


def progress(hub: Hub, user: str) -> list[dict[str, Any]]:
    """The spawn's whole event stream from the hub's progress API, until it ends."""
    events = []
    path = f"/users/{requests.utils.quote(user, safe='')}/server/progress"
    with hub.api("GET", path, stream=True, timeout=600) as answer:
        assert answer.status_code == 200, answer.text
        for line in answer.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                events.append(json.loads(line[len("data:") :]))
    return events


def log_in(hub: Hub, user: str) -> requests.Session:
    """A browser's session after the login form (the test hub's dummy login takes any
    password), its cookies kept."""
    browser = requests.Session()
    form = browser.get(f"{hub.url}/hub/login", timeout=30)
    assert form.status_code == 200, form.text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    assert xsrf, form.text
    fields = {"username": user, "password": "any", "_xsrf": html.unescape(xsrf[1])}
    answer = browser.post(f"{hub.url}/hub/login", data=fields, allow_redirects=False, timeout=30)
    assert answer.status_code == 302, answer.text
    return browser


def spawn_page_events(hub: Hub, browser: requests.Session, user: str) -> list[dict[str, Any]]:
    """Ask for the server as a browser does and read the spawn page's event stream until it
    ends: what the page's progress bar and log show."""
    page = browser.get(f"{hub.url}/hub/spawn/{user}", timeout=120)
    assert page.url.endswith(f"/hub/spawn-pending/{user}"), (page.url, page.text[:500])
    source = re.search(r'new EventSource\("([^"]+)"\)', page.text)
    assert source, page.text
    events = []
    stream_url = hub.url + html.unescape(source[1])
    headers = {"Accept": "text/event-stream"}
    with browser.get(stream_url, headers=headers, stream=True, timeout=600) as answer:
        assert answer.status_code == 200, answer.text
        for line in answer.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                events.append(json.loads(line[len("data:") :]))
    return events


def shown(event: dict[str, Any]) -> str:
    """The line the spawn page shows for an event (its script prefers html_message)."""
    return str(event.get("html_message", event.get("message", "")))


SIZE = re.compile(r"^Pulling (?P<image>\S+): (?P<done>\d+) of (?P<total>\d+) MB \(\d+ layers\)$")
# Podman's compatible API gives no byte counts, only each layer's state (berth/spawner/images.py)
LAYERS = re.compile(r"^Pulling (?P<image>\S+): (?P<done>\d+) layers fetched, \d+ here already$")


def test_the_spawn_page_shows_the_pull_with_berths_progress_events(hub: Hub) -> None:
    events = spawn_page_events(hub, log_in(hub, "puller"), "puller")
    messages = [shown(e) for e in events]
    shown_all = "\n".join(f"{e.get('progress')}: {shown(e)}" for e in events)

    # Berth's steps, in this order, with JupyterHub's "ready" last.
    steps = [
        "Checking the image",
        f"Pulling image {hub.image}",
        f"Pulled image {hub.image}",
        "Creating container ",
        "Starting container",
        "Waiting for the server to answer",
    ]
    where = [next((i for i, m in enumerate(messages) if m.startswith(s)), -1) for s in steps]
    assert -1 not in where and where == sorted(where), shown_all
    assert events[-1].get("ready") is True, shown_all
    assert [events[i]["progress"] for i in where] == [5, 10, 60, 70, 80, 90], shown_all

    # Between "Pulling" and "Pulled": the engine's records folded into sizes and a percentage
    # that only goes up, ending with every byte of the new layer counted. Podman sends byte
    # counts only now and then (none for a quick pull): without them, the layers fetched are
    # counted, the run's own at least.
    between = messages[where[1] + 1 : where[2]]
    podman = engine_kind(docker.from_env()) == PODMAN
    sizes = [m for m in map(SIZE.match, between) if m]
    layers = [m for m in map(LAYERS.match, between) if m]
    assert sizes or (podman and layers), shown_all
    assert {m["image"] for m in sizes + layers} == {hub.image}
    if sizes:
        last = sizes[-1]
        assert int(last["done"]) == int(last["total"]) >= BALLAST_BYTES // 10**6, shown_all
    else:
        assert int(layers[-1]["done"]) >= 1, shown_all
    assert not any(" of 0 MB" in m for m in between), shown_all
    pull_progress = [e["progress"] for e in events[where[1] : where[2] + 1] if "progress" in e]
    assert pull_progress == sorted(pull_progress), shown_all
    assert all(10 <= p <= 60 for p in pull_progress), shown_all
    if not podman:  # seen part way, not only at the end (Podman: bytes only now and then)
        assert any(10 < p < 60 for p in pull_progress), shown_all
    every = [e["progress"] for e in events if "progress" in e]
    assert every == sorted(every), shown_all

    # The server runs the pulled image, with the layer that only the registry had.
    hub.wait_ready("puller")
    assert hub.container("puller").attrs["Config"]["Image"] == hub.image
    size = hub.execute("puller", f"import os; print(os.path.getsize('/{BALLAST}'))")
    assert size.strip() == str(BALLAST_BYTES)
    hub.stop("puller")


def test_a_tag_the_registry_lacks_fails_the_spawn_with_berths_message(hub: Hub) -> None:
    hub.create_user("no-such-tag")
    missing = hub.image.rsplit(":", 1)[0] + ":never-pushed"
    answer = hub.request_spawn("no-such-tag")
    if answer.status_code == 202:
        events = progress(hub, "no-such-tag")
        assert events[-1].get("failed") is True, events
        message = events[-1]["message"]
    else:
        message = answer.json()["message"]
    assert f"Could not pull the image {missing}: " in message, message
    assert "not found" in message or "unknown" in message, message
    assert not hub.user_model("no-such-tag")["servers"]
