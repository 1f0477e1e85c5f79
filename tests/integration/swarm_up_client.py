"""The deployment of test_swarm_up.py as its users and the operator's scripts reach it: the
hub's REST API with the service token of berth.yaml, a server's status through the proxy, and
logins through the hub's form. ``deployed`` is the test's fixture: {"url", "password"}.
"""

from __future__ import annotations

import re
import time

import requests

TOKEN = "swarmup-test-token-" + "0" * 32  # the service token the test's berth.yaml declares


def api(deployed, method: str, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"token {TOKEN}"}
    return requests.request(
        method, f"{deployed['url']}/hub/api{path}", headers=headers, verify=False,
        timeout=kwargs.pop("timeout", 60), **kwargs,
    )  # fmt: skip


def spawn(deployed, user: str, timeout: float = 300) -> None:
    """Create ``user`` and start their server through the hub; wait until it answers through
    the proxy (the hub's service token may access servers)."""
    assert api(deployed, "POST", f"/users/{user}").status_code in (201, 409)
    r = api(deployed, "POST", f"/users/{user}/server", timeout=300)
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = api(deployed, "GET", f"/users/{user}").json()
        server = (model.get("servers") or {}).get("")
        if server and server.get("ready"):
            answer = requests.get(
                f"{deployed['url']}/user/{user}/api/status",
                headers={"Authorization": f"token {TOKEN}"}, verify=False, timeout=30,
            )  # fmt: skip
            assert answer.status_code == 200, answer.text[:300]
            return
        if not model.get("pending") and not server:
            raise AssertionError(f"the server of {user} stopped: {model}")
        time.sleep(2)
    raise AssertionError(f"the server of {user} did not become ready")


def answers(deployed, user: str) -> bool:
    """Whether the user's server answers through the proxy. A server the drain stopped may
    still have its route until the hub's next poll, to an address that no longer answers."""
    try:
        answer = requests.get(
            f"{deployed['url']}/user/{user}/api/status",
            headers={"Authorization": f"token {TOKEN}"}, verify=False, timeout=15,
        )  # fmt: skip
    except requests.RequestException:
        return False
    return answer.status_code == 200


def login(deployed, name: str, password: str) -> requests.Session:
    session = requests.Session()  # verify=False per call: a CA bundle in the environment wins
    page = session.get(f"{deployed['url']}/hub/login", timeout=60, verify=False)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    form = {"username": name, "password": password, "_xsrf": xsrf.group(1) if xsrf else ""}
    answer = session.post(
        f"{deployed['url']}/hub/login", data=form, timeout=60, allow_redirects=False, verify=False
    )
    assert answer.status_code == 302, answer.text[:300]
    return session


def logged_in(deployed, session: requests.Session) -> bool:
    page = session.get(
        f"{deployed['url']}/hub/home", timeout=60, allow_redirects=False, verify=False
    )
    return page.status_code == 200
