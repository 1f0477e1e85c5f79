"""Local accounts through a real `berth up`: nobody takes a listed name or an admin's rights.

Every attack goes through the proxy as a stranger's browser would: GET the sign-up page for
its XSRF token, POST the form, then try to log in with the stranger's password. One deployment
for the module: `users.admins: [boss]`, `users.allowed: [bob]`, sign-up on (the example
berth.yaml's set-up). The tests share it but not an order: each one can run alone, with names of
its own, and leaves berth.yaml and the running hub in agreement.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import time
from collections.abc import Iterator

import docker
import pytest
import requests
from deployment import Deployment, deployment

from berth.names import reserved_name_message

pytestmark = pytest.mark.integration

STRANGER = "strangers-own-passw0rd"
REFUSED = "kept for an account that the operator creates"


@pytest.fixture(scope="module")
def dep(tmp_path_factory) -> Iterator[Deployment]:
    extra = {
        "users": {"admins": ["boss"], "allowed": ["bob"]},
        "auth": {"type": "native", "native": {"enable_signup": True}},
    }
    with deployment(tmp_path_factory.mktemp("accounts"), extra) as made:
        yield made


def form_session(dep: Deployment, path: str) -> tuple[requests.Session, str]:
    session = dep.session()
    page = session.get(f"{dep.url}{path}", timeout=90)
    assert page.status_code == 200, page.text[:300]
    return session, re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)


def sign_up(dep: Deployment, name: str, password: str = STRANGER) -> requests.Response:
    session, xsrf = form_session(dep, "/hub/signup")
    form = {
        "username": name,
        "signup_password": password,
        "signup_password_confirmation": password,
        "_xsrf": xsrf,
    }
    return session.post(f"{dep.url}/hub/signup", data=form, timeout=90)


def log_in(dep: Deployment, name: str, password: str) -> requests.Session | None:
    """The session of a successful login, or None."""
    session, xsrf = form_session(dep, "/hub/login")
    form = {"username": name, "password": password, "_xsrf": xsrf}
    answer = session.post(f"{dep.url}/hub/login", data=form, timeout=90, allow_redirects=False)
    if answer.status_code != 302:
        return None
    home = session.get(f"{dep.url}/hub/home", timeout=90, allow_redirects=False)
    return session if home.status_code == 200 else None


def is_admin(dep: Deployment, name: str) -> bool:
    answer = dep.api("GET", f"/hub/api/users/{name}", user="boss")
    return answer.status_code == 200 and answer.json()["admin"] is True


def with_admins(dep: Deployment, *names: str) -> None:
    dep.config["users"] = {**dep.config["users"], "admins": list(names)}
    dep.write_config()


def admins(dep: Deployment) -> list[str]:
    return list(dep.config["users"]["admins"])


def a_strangers_account_listed_as_admin(dep: Deployment, name: str) -> requests.Session:
    """A stranger signed up as `name` (approved by boss as an ordinary user); then the operator
    lists `name` as an admin. Returns the stranger's session."""
    assert "sent to the admin" in sign_up(dep, name).text
    boss = log_in(dep, "boss", dep.passwords["boss"])
    boss.get(f"{dep.url}/hub/authorize/{name}", timeout=30)  # approve (an ordinary user)
    stranger = log_in(dep, name, STRANGER)
    assert stranger is not None
    with_admins(dep, *admins(dep), name)
    return stranger


def test_berth_up_makes_every_listed_account(dep):
    assert {"boss", "bob"} <= set(dep.passwords)
    assert "admin" not in dep.passwords  # no default `admin`: one is listed
    assert log_in(dep, "boss", dep.passwords["boss"]) is not None
    assert log_in(dep, "bob", dep.passwords["bob"]) is not None
    assert is_admin(dep, "boss") and not is_admin(dep, "bob")


@pytest.mark.parametrize("name", ["bob", "Bob", "ＢＯＢ", "bob\u200b", "boss"])  # noqa: RUF001
def test_a_stranger_cannot_sign_up_as_a_listed_name(dep, name):
    """Fails on main: NativeAuthenticator approved `bob` at sign-up because he is listed, and
    `berth up` made no account for him, so the first stranger to sign up as bob was bob."""
    answer = sign_up(dep, name)
    assert answer.status_code == 200
    assert REFUSED in answer.text or "invisible" in answer.text, answer.text[-2000:]
    assert log_in(dep, name, STRANGER) is None
    assert log_in(dep, name.lower(), STRANGER) is None


@pytest.mark.parametrize("name", ["hub", "Proxy"])
def test_nobody_signs_up_or_is_added_under_the_name_of_a_part_of_berth(dep, engine, name):
    """Fails on main: the sign-up went through (waiting for approval), and once approved the
    user's server container would have been called `berth-hub` (`berth-proxy`): the name of
    Berth's own hub (proxy) container. `berth users add` made such an account at once."""
    answer = sign_up(dep, name)
    assert answer.status_code == 200
    assert reserved_name_message(name.lower()) in html.unescape(answer.text), answer.text[-2000:]
    assert log_in(dep, name.lower(), STRANGER) is None
    assert dep.api("GET", f"/hub/api/users/{name.lower()}", user="boss").status_code == 404
    added = dep.berth("users", "add", name)
    assert added.returncode == 1, added.stderr
    assert "is reserved: Berth's own parts" in " ".join(added.stderr.split()), added.stderr
    assert dep.api("GET", f"/hub/api/users/{name.lower()}", user="boss").status_code == 404
    assert engine.containers.get(f"berth-{name.lower()}").labels["berth.deploy.role"]


def test_an_unlisted_sign_up_waits_for_approval(dep):
    answer = sign_up(dep, "mallory")
    assert "sent to the admin" in answer.text, answer.text[-2000:]
    assert log_in(dep, "mallory", STRANGER) is None


def test_berth_users_add_does_not_approve_a_strangers_sign_up(dep):
    """Fails on main: `berth users add mallet` approved the waiting sign-up of whoever had
    signed up as mallet (the operator meant to make an account for the real one)."""
    assert "sent to the admin" in sign_up(dep, "mallet").text
    added = dep.berth("users", "add", "mallet")
    assert added.returncode == 1 and "signing up" in added.stderr, added.stderr
    assert log_in(dep, "mallet", STRANGER) is None


def test_a_second_up_changes_nothing(dep, engine):
    before = engine.containers.get("berth-hub").id
    result = dep.up()
    assert "nothing changed" in result.stderr, result.stderr
    assert "one-time password" not in result.stderr
    assert engine.containers.get("berth-hub").id == before


def test_a_new_admin_name_cannot_be_taken_while_berth_up_runs(dep, engine):
    """The hub answers before `berth up` makes the new admin's account. A stranger who signs up
    with that name in that window (here: as fast as possible from the moment the new hub
    container exists until `berth up` is done) must get nothing. Fails on main: the sign-up was
    approved at once (the name is in admin_users) and `berth up` accepted the existing account,
    so the stranger logged in as an admin."""
    old_hub = engine.containers.get("berth-hub").id
    with_admins(dep, *admins(dep), "newboss")
    up = subprocess.Popen(
        [sys.executable, "-m", "berth", "up"],
        cwd=dep.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers: list[str] = []
    deadline = time.monotonic() + 600
    try:
        while up.poll() is None and time.monotonic() < deadline:
            try:
                restarted = engine.containers.get("berth-hub").id != old_hub
            except docker.errors.NotFound:
                restarted = False
            if not restarted:
                time.sleep(0.2)
                continue
            try:
                answers.append(sign_up(dep, "newboss").text)
            except (requests.RequestException, AttributeError, AssertionError):
                time.sleep(0.1)  # the new hub is not answering yet
        _, err = up.communicate(timeout=600)
    finally:
        if up.poll() is None:
            up.kill()
    assert up.returncode == 0, err
    assert answers, "the new hub never answered during `berth up`: no window was tested"
    assert all(REFUSED in text for text in answers), "a sign-up as newboss went through"
    dep.read_passwords(err)
    assert log_in(dep, "newboss", STRANGER) is None
    assert log_in(dep, "newboss", dep.passwords["newboss"]) is not None
    assert is_admin(dep, "newboss")


def test_a_signed_up_account_is_not_made_an_admin(dep):
    """A stranger signed up as carol before the operator listed carol as an admin (and was even
    approved as an ordinary user). Fails on main: the hub made that account an admin."""
    listed_before = admins(dep)
    stranger = a_strangers_account_listed_as_admin(dep, "carol")
    refused = dep.berth("up")
    assert refused.returncode == 1, refused.stderr
    flat = " ".join(refused.stderr.split())
    assert "signing up" in flat and "berth users admin carol on" in flat, refused.stderr
    assert "berth users remove carol" in flat
    assert not is_admin(dep, "carol")
    admin_page = stranger.get(f"{dep.url}/hub/admin", timeout=30, allow_redirects=False)
    assert admin_page.status_code == 403
    again = dep.berth("up")  # the hub runs the new config: the same answer, nothing given
    assert again.returncode == 1 and "signing up" in again.stderr
    assert not is_admin(dep, "carol")
    with_admins(dep, *listed_before)  # the operator takes the listing back
    dep.up()
    assert not is_admin(dep, "carol")


def test_remove_then_up_makes_the_admin_account_afresh(dep):
    a_strangers_account_listed_as_admin(dep, "erin")
    assert dep.berth("up").returncode == 1  # refused, as in the test above
    removed = dep.berth("users", "remove", "erin")
    assert removed.returncode == 0, removed.stderr
    result = dep.up()
    assert "erin" in dep.passwords, result.stderr
    assert log_in(dep, "erin", STRANGER) is None
    assert log_in(dep, "erin", dep.passwords["erin"]) is not None
    assert is_admin(dep, "erin")
    again = dep.up()
    assert "nothing changed" in again.stderr, again.stderr
