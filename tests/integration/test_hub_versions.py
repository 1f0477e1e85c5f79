"""The spawner and the local-account login in a real hub on each supported JupyterHub release.

Berth declares a range of JupyterHub releases (berth/versions.py, pyproject.toml); here a hub
runs on each release of ``JUPYTERHUB_TESTED`` (its own virtualenv, tests/hub_venvs.py) with
Berth's native authenticator and ContainerSpawner: a sign-up, a login through the login page,
a server spawned, code run in it, the hub restarted under it, the server stopped. The whole
spawner suite runs on any release with ``scripts/test.sh --jupyterhub VERSION``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from hub_harness import Hub
from hub_marks import HUB_MARKS
from hub_venvs import hub_python, installed_jupyterhub

from berth.versions import JUPYTERHUB_TESTED

pytestmark = HUB_MARKS

PASSWORD = "a-Better-passw0rd-for-tests"

CONFIG = """
c.JupyterHub.authenticator_class = "berth-native"
c.NativeAuthenticator.open_signup = True
c.ContainerSpawner.image = "{image}"
c.ContainerSpawner.prefix = "{prefix}"
c.ContainerSpawner.pull_policy = "never"
c.ContainerSpawner.volumes = {{"{{prefix}}-{{username}}": "/home/jovyan/work"}}
"""


@pytest.fixture(scope="module", params=JUPYTERHUB_TESTED)
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    version = str(request.param)
    python = hub_python(version)
    assert installed_jupyterhub(python) == version
    h = Hub(tmp_path_factory.mktemp(f"hub-{version}"), CONFIG, python=python)
    try:
        yield h.start()
    finally:
        h.cleanup()


def xsrf_of(page: requests.Response) -> str:
    found = re.search(r'name="_xsrf"\s+value="([^"]+)"', page.text)
    assert found, page.text[:2000]
    return found.group(1)


def submit(browser: requests.Session, url: str, **fields: str) -> requests.Response:
    """Fill in the form at `url` as a browser does (its XSRF field included); no redirects."""
    form = browser.get(url, timeout=30)
    assert form.status_code == 200, form.text[:2000]
    return browser.post(
        url, data={**fields, "_xsrf": xsrf_of(form)}, timeout=30, allow_redirects=False
    )


def test_sign_up_and_log_in_through_the_login_page(hub: Hub) -> None:
    """On JupyterHub 6 this failed before berth/auth/nostatsd.py: NativeAuthenticator's login
    handler calls the statsd client JupyterHub 6 removed, and every login answered 500."""
    with requests.Session() as browser:
        signed = submit(
            browser,
            f"{hub.url}/hub/signup",
            username="ann",
            signup_password=PASSWORD,
            signup_password_confirmation=PASSWORD,
        )
        assert signed.status_code == 200 and "alert-success" in signed.text, signed.text
        wrong = submit(browser, f"{hub.url}/hub/login", username="ann", password="not-it-at-all")
        assert wrong.status_code == 200 and "Invalid username or password" in wrong.text
        login = submit(browser, f"{hub.url}/hub/login", username="ann", password=PASSWORD)
        assert login.status_code == 302, (login.status_code, hub.log_tail())
        me = browser.get(f"{hub.url}/hub/api/user", timeout=30)
        assert me.status_code == 200 and me.json()["name"] == "ann", me.text


def test_spawn_run_code_survive_a_hub_restart_and_stop(hub: Hub) -> None:
    hub.spawn("bob")
    before = hub.container("bob").id
    assert hub.execute("bob", "print(6 * 7)").strip() == "42"
    hub.restart_hub()
    assert hub.user_model("bob")["servers"][""]["ready"]
    assert hub.container("bob").id == before
    assert hub.execute("bob", "print('still here')").strip() == "still here"
    hub.stop("bob")
