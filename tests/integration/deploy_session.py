"""A running `berth up` deployment as its users meet it, for test_deploy.py,
test_deploy_restarts.py and test_deploy_system_users.py: the login form, a user's files through
the contents API, the hub's REST API while a restarted hub comes back, and alice as several
tests expect her.
"""

from __future__ import annotations

import re
import time

import requests
from deployment import Deployment

SERVICE = ["berth-hub", "berth-proxy", "berth-engine-guard"]  # unprivileged, no capability
EVERY_CONTAINER = [*SERVICE, "berth-firewall"]  # the firewall runs as root with NET_ADMIN only
ALICE_PASSWORD = "a-Better-passw0rd"
NOTES = "kept across restarts"


def post_login(
    session: requests.Session, dep: Deployment, user: str, password: str
) -> requests.Response:
    """The login form sent as a browser sends it (with the page's _xsrf, if it has one)."""
    page = session.get(f"{dep.url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    form = {"username": user, "password": password}
    if xsrf:
        form["_xsrf"] = xsrf.group(1)
    return session.post(f"{dep.url}/hub/login", data=form, timeout=30, allow_redirects=False)


def login(dep: Deployment, user: str, password: str) -> requests.Session:
    """Log in through the login form, as a browser does; returns the session with its cookies."""
    session = dep.session()
    answer = post_login(session, dep, user, password)
    assert answer.status_code == 302, answer.text[:500]
    return session


def hub_home(session: requests.Session, dep: Deployment) -> int:
    return session.get(f"{dep.url}/hub/home", timeout=30, allow_redirects=False).status_code


def put_file(dep: Deployment, user: str, name: str, text: str) -> None:
    answer = dep.api(
        "PUT",
        f"/user/{user}/api/contents/{name}",
        json={"type": "file", "format": "text", "content": text},
    )
    assert answer.status_code in (200, 201), answer.text


def get_file(dep: Deployment, user: str, name: str) -> str:
    answer = dep.api("GET", f"/user/{user}/api/contents/{name}")
    assert answer.status_code == 200, answer.text
    return answer.json()["content"]


def user_model(dep: Deployment, name: str) -> dict | None:
    """The user's model from the hub's REST API (None: no such user). A hub that a previous
    test restarted may still be starting (the proxy answers 503): waits up to 120 s for it."""

    def answer() -> requests.Response | None:
        try:
            got = dep.api("GET", f"/hub/api/users/{name}")
        except requests.RequestException:
            return None
        return got if got.status_code in (200, 404) else None

    got = eventually(answer, 120)
    assert got is not None, "the hub's REST API did not answer within 120 s"
    return got.json() if got.status_code == 200 else None


def read_or_none(dep: Deployment, user: str, name: str) -> str | None:
    try:
        answer = dep.api("GET", f"/user/{user}/api/contents/{name}")
    except requests.RequestException:
        return None
    return answer.json()["content"] if answer.status_code == 200 else None


def eventually(probe, timeout: float):
    """The probe's first non-None answer within `timeout` seconds (polled every second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value is not None:
            return value
        time.sleep(1)
    return None


def with_alice(dep: Deployment) -> Deployment:
    """The deployment with alice as several tests expect her, whatever ran before: her account
    with ALICE_PASSWORD, her server running, and notes.txt (NOTES) in her volume (the modules'
    `alice` fixture)."""
    if user_model(dep, "alice") is None:
        added = dep.berth("users", "add", "alice")
        assert added.returncode == 0, added.stderr
    if dep.passwords.get("alice") != ALICE_PASSWORD:
        changed = dep.berth("users", "set-password", "alice", stdin=ALICE_PASSWORD + "\n")
        assert changed.returncode == 0, changed.stderr
        dep.passwords["alice"] = ALICE_PASSWORD
    server = ((user_model(dep, "alice") or {}).get("servers") or {}).get("")
    if not (server and server.get("ready")):
        dep.start_server("alice")
    if read_or_none(dep, "alice", "notes.txt") != NOTES:
        put_file(dep, "alice", "notes.txt", NOTES)
    return dep
