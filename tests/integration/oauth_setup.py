"""The local OAuth provider's container, the OIDC and GitHub deployments, and login helpers,
for test_oauth.py (see its docstring for the picture)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from threading import Thread
from typing import Any
from urllib.parse import urljoin, urlsplit

import docker
import oauth_provider
import pytest
import requests
from deployment import (
    Deployment,
    base_config,
    exclusive_hub,
    free_port,
    teardown,
)

PROVIDER_NAME = "berth-test-oauth"
PROVIDER_PORT = 8000  # inside its container
PROVIDER_IMAGE = "berth/hub:latest"
PROVIDER_DIR = "/tmp/oauth-provider"
TEST_LABEL = "berth-test"
HUB = "berth-hub"
CLIENT_ID = "berth-test-client"
RENDERED_CONFIG = "/srv/berth/config/jupyterhub_config.py"
SECRET_FILE = "/srv/berth/data/secrets/oauth_client_secret"
OAUTH_ENV = (
    "OAUTH_CLIENT_ID",
    "OAUTH_CLIENT_SECRET",
    "OAUTH_CALLBACK_URL",
    "GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_SECRET",
)

# Provider accounts. alice is allowed by name (users.allowed), bob by the group `staff`
# (oidc.allowed_groups), dave by the group `ops` (oidc.admin_groups: admin too); mallory is a
# genuine account at the provider that the hub must refuse; trudy is in `staff` but has typed
# dave's address into her profile, which the provider has not verified.
USERS = {
    "alice": {"name": "Alice", "groups": ["research"], "orgs": ["acme"]},
    "bob": {"name": "Bob", "groups": ["staff"]},
    "dave": {"name": "Dave", "groups": ["ops"]},
    "mallory": {"name": "Mallory", "groups": ["guests"]},
    "trudy": {
        "name": "Trudy",
        "groups": ["staff"],
        "email": "dave@example.org",
        "email_verified": False,
    },
}


def quiet_session() -> requests.Session:
    """A session that ignores proxy variables: every request here goes to 127.0.0.1."""
    session = requests.Session()
    session.trust_env = False
    return session


# -- the provider ---------------------------------------------------------------------------------


@dataclass
class Provider:
    public_url: str  # what the browser uses
    internal_url: str = f"http://{PROVIDER_NAME}:{PROVIDER_PORT}"  # what the hub uses

    def browser_url(self, url: str) -> str:
        """Where the browser goes for `url`. With one base URL for both sides (GitHub's
        `github_url`), the hub's name for the provider is reached at its published port."""
        if url.startswith(self.internal_url + "/"):
            return self.public_url + url[len(self.internal_url) :]
        return url

    def events(self, endpoint: str | None = None, since: float = 0) -> list[dict[str, Any]]:
        with quiet_session() as session:
            answer = session.get(f"{self.public_url}/_log", timeout=30)
        answer.raise_for_status()
        return [
            e
            for e in answer.json()
            if e["time"] >= since and (endpoint is None or e["endpoint"] == endpoint)
        ]


def provider_config(secret: str, callback: str, issuer: str) -> dict[str, Any]:
    return {
        "clients": {CLIENT_ID: {"secret": secret, "redirect_uris": [callback]}},
        "users": USERS,
        "issuer": issuer,
    }


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directory = tarfile.TarInfo(PROVIDER_DIR.removeprefix("/tmp/"))
        directory.type, directory.mode, directory.uid, directory.gid = (
            tarfile.DIRTYPE,
            0o755,
            1000,
            100,
        )
        tar.addfile(directory)
        subdirs = sorted({str(parent) for name in files for parent in PurePosixPath(name).parents})
        for name in subdirs[1:]:  # [0] is "."
            info = tarfile.TarInfo(f"{directory.name}/{name}")
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, 1000, 100
            tar.addfile(info)
        for name, data in files.items():
            info = tarfile.TarInfo(f"{directory.name}/{name}")
            info.size, info.mode, info.uid, info.gid = len(data), 0o644, 1000, 100
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@contextmanager
def provider_container(
    client: docker.DockerClient, network: str, published: int, config: dict[str, Any]
) -> Iterator[Provider]:
    """`berth-test-oauth` on `network`, published on 127.0.0.1:`published`; always removed."""
    try:
        stale = client.containers.get(PROVIDER_NAME)
    except docker.errors.NotFound:
        pass
    else:
        assert TEST_LABEL in stale.labels, f"{PROVIDER_NAME} exists and is not a test container"
        stale.remove(force=True)
    container = client.containers.create(
        PROVIDER_IMAGE,
        ["python3", "-m", "oauth_provider", "--config", f"{PROVIDER_DIR}/config.json"],
        environment={"PYTHONPATH": PROVIDER_DIR},
        name=PROVIDER_NAME,
        hostname=PROVIDER_NAME,
        network=network,
        ports={f"{PROVIDER_PORT}/tcp": ("127.0.0.1", published)},
        labels={TEST_LABEL: __name__},
        healthcheck={"test": ["NONE"]},  # not the hub image's own check
        security_opt=["no-new-privileges"],
        cap_drop=["ALL"],
        detach=True,
    )
    try:
        package = Path(oauth_provider.__file__).parent
        files = {f"oauth_provider/{p.name}": p.read_bytes() for p in package.glob("*.py")}
        archive = tar_of({**files, "config.json": json.dumps(config).encode()})
        assert container.put_archive("/tmp", archive)
        container.start()
        provider = Provider(f"http://127.0.0.1:{published}")
        deadline = time.monotonic() + 30
        with quiet_session() as session:
            while True:
                try:
                    if session.get(f"{provider.public_url}/healthz", timeout=2).ok:
                        break
                except requests.ConnectionError:
                    pass
                container.reload()
                if container.status == "exited" or time.monotonic() > deadline:
                    logs = container.logs().decode(errors="replace")
                    raise AssertionError(f"the test provider did not start:\n{logs}")
                time.sleep(0.2)
        yield provider
    finally:
        container.remove(force=True)


@contextmanager
def in_process_provider(config: dict[str, Any]) -> Iterator[str]:
    server = oauth_provider.make_server(config)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# -- the deployment -------------------------------------------------------------------------------


@dataclass
class Setup:
    dep: Deployment
    provider: Provider
    secret: str
    first_up: subprocess.CompletedProcess
    env_file: Path | None = None
    callback: str = ""
    logged_in: dict[str, requests.Session] = field(default_factory=dict)


@contextmanager
def oauth_deployment(
    workdir: Path, extra: Callable[[int], dict[str, Any]]
) -> Iterator[tuple[Deployment, subprocess.CompletedProcess]]:
    """tests/deployment.py's `deployment`, keeping the first `berth up`'s output to inspect,
    and building `extra` from the hub's port (the callback URL needs it)."""
    os.makedirs(workdir, exist_ok=True)
    with pytest.MonkeyPatch.context() as env, exclusive_hub():
        for name in OAUTH_ENV:  # they would win over berth.yaml's env_file
            env.delenv(name, raising=False)
        teardown(workdir)
        port = free_port()
        config = base_config(port)
        config.update(extra(port))
        dep = Deployment(workdir, port, config)
        dep.write_config()
        try:
            yield dep, dep.up()
        finally:
            teardown(workdir)


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """The seed's oauth.env: KEY=VALUE lines, mode 600 from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("# OAuth client of the test provider\n")
        handle.writelines(f"{key}={value}\n" for key, value in values.items())
    os.chmod(path, 0o600)


class FormParser(HTMLParser):
    """The first form of a page: its action, and its fields as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, str] = {}
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if self.done:
            return
        if tag == "form" and self.action is None:
            self.action = values.get("action", "")
        elif tag == "input" and self.action is not None and "name" in values:
            self.fields[values["name"]] = values.get("value", "")
        elif tag == "button" and self.action is not None:
            self.buttons[values.get("value", "")] = values.get("name", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.action is not None:
            self.done = True


@dataclass
class Login:
    session: requests.Session
    authorize_url: str  # where the hub sent the browser
    callback: requests.Response  # the hub's answer on /hub/oauth_callback (not followed)
    started: float


def oauth_login(setup: Setup, username: str, button: str = "login") -> Login:
    """Log in as a browser does: hub → provider's form → POST it → back to the hub's callback."""
    dep = setup.dep
    started = time.time()
    session = dep.session()
    session.trust_env = False
    start = session.get(
        f"{dep.url}/hub/oauth_login",
        params={"next": "/hub/home"},
        timeout=30,
        allow_redirects=False,
    )
    assert start.status_code == 302, start.text[:500]
    authorize_url = setup.provider.browser_url(start.headers["Location"])
    assert authorize_url.startswith(setup.provider.public_url + "/"), authorize_url
    page = session.get(authorize_url, timeout=30, allow_redirects=False)
    assert page.status_code == 200, page.text[:500]
    form = FormParser()
    form.feed(page.text)
    assert form.action and "username" in form.fields, page.text[:500]
    data = {**form.fields, "username": username, form.buttons[button]: button}
    answer = session.post(
        urljoin(authorize_url, form.action), data=data, timeout=30, allow_redirects=False
    )
    assert answer.status_code == 302, answer.text[:500]
    back = answer.headers["Location"]
    assert back.startswith(setup.callback + "?"), back
    callback = session.get(back, timeout=60, allow_redirects=False)
    return Login(session, authorize_url, callback, started)


def logged_in(setup: Setup, username: str) -> requests.Session:
    """A session of `username` after a successful login (one login per user per class)."""
    if username not in setup.logged_in:
        login = oauth_login(setup, username)
        assert login.callback.status_code == 302, login.callback.text[:1000]
        assert urlsplit(login.callback.headers["Location"]).path == "/hub/home"
        setup.logged_in[username] = login.session
    return setup.logged_in[username]


def hub_log(dep: Deployment) -> str:
    result = dep.berth("logs")
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def assert_secret_hidden(setup: Setup, engine: docker.DockerClient, section: str) -> None:
    """Not in `berth up`'s output, the rendered config, the hub's environment or its log."""
    secret, dep = setup.secret, setup.dep
    assert secret not in setup.first_up.stdout + setup.first_up.stderr
    again = dep.berth("up")
    assert again.returncode == 0, again.stderr
    assert secret not in again.stdout + again.stderr
    hub = engine.containers.get(HUB)
    rendered = hub.exec_run(["cat", RENDERED_CONFIG])
    assert rendered.exit_code == 0, rendered.output
    text = rendered.output.decode()
    assert secret not in text
    assert f"c.{section}.client_secret = _secret({SECRET_FILE!r})" in text, text
    assert f"c.{section}.client_id = {CLIENT_ID!r}" in text
    # The whole of `docker inspect` (environment, command, labels, mounts).
    assert secret not in json.dumps(hub.attrs)
    assert not any("SECRET" in item for item in hub.attrs["Config"]["Env"])
    assert secret not in hub_log(dep)
    # It is in the data volume, for the hub user only.
    mode = hub.exec_run(["stat", "-c", "%a %u", SECRET_FILE])
    assert mode.output.decode().split() == ["600", "1000"], mode.output
    held = hub.exec_run(["cat", SECRET_FILE]).output.decode().strip()
    assert held == secret


# -- the provider on its own ----------------------------------------------------------------------
