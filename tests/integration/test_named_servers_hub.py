"""Named servers through a real JupyterHub, configured by berth.yaml's translation (main has no
`servers` section, so every test here fails there at the config): two servers
of one user with different images and their own volumes, the home page listing them, the limit,
and attacks on them (crafted names, another user's server through the API)."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import docker
import pytest
import requests
from engine_reports import image_name
from hub_harness import Hub, image_available
from hub_marks import NEEDS_PROXY

from berth.config import config_from_data, to_jupyterhub_config

BASE = "berth/base-notebook:latest"
MINIMAL = "berth/minimal-notebook:latest"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (image_available(BASE) and image_available(MINIMAL)), reason="images not built"
    ),
    NEEDS_PROXY,
]

BERTH_YAML = {
    "servers": {"named": True, "limit_per_user": 2},
    "images": {"default": BASE, "allowed": {"Base": BASE, "Minimal": MINIMAL}},
    # the harness's per-run prefix keeps the test's volumes apart (and removed afterwards)
    "storage": {"volume_name_template": "{prefix}-user-{username}{server_suffix}"},
}


def hub_release() -> tuple[int, ...]:
    """The JupyterHub release the test hub runs (the harness's Python)."""
    python = os.environ.get("BERTH_HUB_PYTHON") or sys.executable
    found = subprocess.run(
        [python, "-c", "import jupyterhub; print(jupyterhub.__version__)"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return tuple(int(part) for part in re.findall(r"\d+", found)[:2])


# JupyterHub 6 takes only safe slugs (lowercase letters, digits, single hyphens) as new server
# names and answers 400 to others: there the escaping of a name is shown with what 6 accepts.
SLUG_NAMES_ONLY = hub_release() >= (6, 0)
UNICODE_SERVER = "zoë-名前"
SECOND_SERVER = "zoe-2nd" if SLUG_NAMES_ONLY else UNICODE_SERVER
SECOND_ESCAPED = "zoe-2d2nd" if SLUG_NAMES_ONLY else "zo-c3-ab-2d-e5-90-8d-e5-89-8d"


def spawner_config() -> str:
    """The hub's and spawner's settings for named servers, as `berth up` would write them."""
    c = to_jupyterhub_config(config_from_data(BERTH_YAML))
    lines = [
        f"c.JupyterHub.{k} = {c['JupyterHub'][k]!r}"
        for k in ("allow_named_servers", "named_server_limit_per_user")
    ]
    lines += [
        f"c.ContainerSpawner.{k} = {c['ContainerSpawner'][k]!r}"
        for k in ("image", "allowed_images", "volumes", "pull_policy")
    ]
    lines.append(f"c.Spawner.notebook_dir = {c['Spawner']['notebook_dir']!r}")
    # Hub.start() fills {prefix} itself: the config's own braces are doubled for it.
    escaped = "\n".join(lines).replace("{", "{{").replace("}", "}}")
    return escaped + '\nc.ContainerSpawner.prefix = "{prefix}"\n'


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(tmp_path_factory.mktemp("hub"), spawner_config())
    h.API_SCOPES = (*Hub.API_SCOPES, "tokens")  # to make a token for another user
    try:
        yield h.start()
    finally:
        h.cleanup()


def volume_of(container: docker.models.containers.Container) -> str:
    (mount,) = [m for m in container.attrs["Mounts"] if m["Destination"] == "/home/jovyan/work"]
    return str(mount["Name"])


def test_two_named_servers_with_their_own_images_and_volumes(hub: Hub) -> None:
    hub.spawn("alice", "one", image="Base")
    hub.spawn("alice", SECOND_SERVER, image="Minimal")
    one, other = hub.container("alice", "one"), hub.container("alice", SECOND_SERVER)
    # As asked for: Podman names a loaded image localhost/<name> (engine_reports.image_name).
    images = (image_name(one.attrs["Config"]["Image"]), image_name(other.attrs["Config"]["Image"]))
    assert images == (BASE, MINIMAL)
    assert (one.name, other.name) == (
        f"{hub.prefix}-alice_one",
        f"{hub.prefix}-alice_{SECOND_ESCAPED}",
    )
    assert (volume_of(one), volume_of(other)) == (
        f"{hub.prefix}-user-alice_one",
        f"{hub.prefix}-user-alice_{SECOND_ESCAPED}",
    )
    labels = hub.docker.volumes.get(volume_of(other)).attrs["Labels"]
    assert (labels["berth.user"], labels["berth.server"]) == ("alice", SECOND_SERVER)
    # a file written in one server's volume is not in the other's
    hub.execute("alice", "open('/home/jovyan/work/mine.txt', 'w').write('one')", server="one")
    check = "import os; print(os.path.exists('/home/jovyan/work/mine.txt'))"
    assert hub.execute("alice", check, server="one").strip() == "True"
    assert hub.execute("alice", check, server=SECOND_SERVER).strip() == "False"
    # the image of each server is what its kernel runs in (minimal-notebook has git)
    which_git = "import shutil; print(shutil.which('git'))"
    assert hub.execute("alice", which_git, server=SECOND_SERVER).strip() == "/usr/bin/git"
    assert hub.execute("alice", which_git, server="one").strip() == "None"


def xsrf_of(page: requests.Response) -> str:
    found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def log_in(hub: Hub, user: str) -> requests.Session:
    """A browser session of ``user`` (the test hub's dummy authenticator takes any password)."""
    browser = requests.Session()
    page = browser.get(f"{hub.url}/hub/login", timeout=30)
    r = browser.post(
        f"{hub.url}/hub/login",
        data={"username": user, "password": "any", "_xsrf": xsrf_of(page)},
        timeout=60,
    )
    assert r.status_code == 200, r.status_code
    return browser


def test_the_options_form_starts_a_named_server_on_the_chosen_image(hub: Hub) -> None:
    """What the home page's "Add New Server" leads to: the options form of that server."""
    browser = log_in(hub, "nina")
    form = browser.get(f"{hub.url}/hub/spawn/nina/pick", timeout=30)
    assert form.status_code == 200
    assert '<option value="Base"' in form.text and '<option value="Minimal"' in form.text
    action = re.search(r'id="spawn_form"\s+action="([^"]+)"', form.text)
    assert action, form.text[:2000]
    # the form's action carries the _xsrf token, as a browser would send it
    target = hub.url + html.unescape(action.group(1))
    r = browser.post(target, files={"image": (None, "Minimal")}, timeout=120)
    assert r.status_code == 200, r.status_code
    hub.wait_ready("nina", "pick")
    assert image_name(hub.container("nina", "pick").attrs["Config"]["Image"]) == MINIMAL
    hub.stop("nina", "pick")


def test_the_home_page_lists_the_named_servers(hub: Hub) -> None:
    hub.create_user("lena")
    for server in ("first", SECOND_SERVER):  # running or not: the page lists them
        r = hub.api("POST", hub.server_path("lena", server), json={"image": "Base"}, timeout=120)
        assert r.status_code in {201, 202}, r.text
    browser = log_in(hub, "lena")
    home = browser.get(f"{hub.url}/hub/home", timeout=30)
    assert home.status_code == 200
    home.encoding = "utf-8"  # the page declares it in a <meta> only
    assert "Add New Server" in home.text or "named-servers" in home.text
    for server in ("first", SECOND_SERVER):
        assert f'data-server-name="{server}"' in home.text, re.findall(
            "data-server-name=.*", home.text
        )
    for server in ("first", SECOND_SERVER):
        hub.wait_ready("lena", server)
        hub.stop("lena", server)


def test_a_user_cannot_exceed_the_limit(hub: Hub) -> None:
    """limit_per_user 2: a third named server is refused (the default server does not count)."""
    hub.create_user("carl")
    for server in ("s1", "s2"):
        r = hub.api("POST", hub.server_path("carl", server), json={"image": "Base"}, timeout=120)
        assert r.status_code in {201, 202}, r.text
    r = hub.api("POST", hub.server_path("carl", "s3"), json={"image": "Base"})
    assert r.status_code == 400 and "maximum of 2 named servers" in r.text, r.text
    for server in ("s1", "s2"):
        hub.wait_ready("carl", server)
        hub.stop("carl", server)


def user_token(hub: Hub, user: str) -> str:
    hub.create_user(user)
    r = hub.api("POST", f"/users/{user}/tokens", json={"note": "test"})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_another_users_named_server_is_out_of_reach(hub: Hub) -> None:
    """Mallory's own token can neither start, stop nor open alice's named server."""
    hub.create_user("alice")
    if "one" not in hub.user_model("alice")["servers"]:
        hub.spawn("alice", "one", image="Base")
    token = {"Authorization": f"token {user_token(hub, 'mallory')}"}
    api = f"{hub.url}/hub/api"
    for method, path in [
        ("POST", "/users/alice/servers/two"),
        ("DELETE", "/users/alice/servers/one"),
        ("GET", "/users/alice"),
    ]:
        r = requests.request(method, api + path, headers=token, timeout=30)
        assert r.status_code in {403, 404}, (method, path, r.status_code, r.text)
    r = requests.get(hub.user_url("alice", "one") + "api/status", headers=token, timeout=30)
    assert r.status_code == 403, r.status_code
    assert "one" in hub.user_model("alice")["servers"]  # still running


@pytest.mark.parametrize("server", ["..%2F..%2Fbob", "x%2F..%2Fone"])
def test_a_server_name_with_a_slash_is_refused(hub: Hub, server: str) -> None:
    hub.create_user("trudy")
    r = hub.api("POST", f"/users/trudy/servers/{server}")
    assert r.status_code in {400, 404}, r.text
    assert not hub.made_here("containers", "trudy")


def test_an_overlong_server_name_fails_with_a_message_and_creates_nothing(hub: Hub) -> None:
    hub.create_user("olga")
    name = "é" * 120  # 1,440 characters once escaped
    r = hub.api("POST", hub.server_path("olga", name), json={"image": "Base"}, timeout=120)
    assert r.status_code in ({400} if SLUG_NAMES_ONLY else {202, 500}), r.text
    if r.status_code == 500:
        assert "longer than 255" in r.text, r.text
    assert not hub.made_here("containers", "olga")
    assert not hub.made_here("volumes", "olga")


@pytest.mark.skipif(not SLUG_NAMES_ONLY, reason="JupyterHub 5 takes any name; escaping covers it")
def test_jupyterhub_6_refuses_a_name_that_is_not_a_slug_and_nothing_is_created(hub: Hub) -> None:
    hub.create_user("uma")
    r = hub.api("POST", hub.server_path("uma", UNICODE_SERVER), json={"image": "Base"})
    assert r.status_code == 400 and "Invalid server_name" in r.text, r.text
    assert not hub.made_here("containers", "uma")
    assert not hub.made_here("volumes", "uma")
