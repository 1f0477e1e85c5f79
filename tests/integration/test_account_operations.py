"""The account operations behind `berth users …` and `berth up`'s listed accounts, fast: a
real JupyterHub (accounts_lab.py), no engine. The deployment tests (test_accounts.py,
test_deploy.py) run the same operations through a whole `berth up`.
"""

from __future__ import annotations

import accounts_lab
import bcrypt
import pytest
import requests
from accounts_lab import STRONG, LocalHub, local_account, made_by_operator, run_op, running
from hub_marks import NEEDS_PROXY

from berth.deploy import accounts

pytestmark = [
    pytest.mark.integration,
    NEEDS_PROXY,
]

hub, ops = accounts_lab.hub, accounts_lab.ops  # the module's hub and the operations pointed at it


# --- the account operations ------------------------------------------------------------------


def test_a_weak_password_leaves_no_half_made_user(ops: LocalHub) -> None:
    status, answer = run_op("add", name="weakling", admin=False, native=True, password="password")
    assert status == 1
    assert answer["error"].startswith("password refused: at least "), answer
    assert "weakling" not in ops.users()  # no hub user
    assert local_account("weakling") is None  # no local account
    assert not made_by_operator("weakling")
    # The same name with a good password is then made whole.
    status, answer = run_op("add", name="weakling", admin=False, native=True, password=STRONG)
    assert (status, answer) == (0, {"name": "weakling", "admin": False, "created": True})
    assert "weakling" in ops.users()
    info = local_account("weakling")
    assert info.is_authorized and bcrypt.checkpw(STRONG.encode(), info.password)
    assert made_by_operator("weakling")


def test_add_without_a_password_generates_one_shown_once(ops: LocalHub) -> None:
    status, answer = run_op("add", name="gen", admin=True, native=True)
    assert status == 0, answer
    password = answer.pop("password")
    assert answer == {"name": "gen", "admin": True, "created": True}
    assert len(password) >= 16
    assert bcrypt.checkpw(password.encode(), local_account("gen").password)
    assert ops.api("GET", "/users/gen").json()["admin"] is True
    assert run_op("add", name="gen", admin=False, native=True) == (
        1,
        {"error": "user 'gen' already exists"},
    )


def test_set_password_refuses_a_weak_one_and_keeps_the_old(ops: LocalHub) -> None:
    assert run_op("add", name="carla", admin=False, native=True, password=STRONG)[0] == 0
    status, answer = run_op("set-password", name="carla", password="123")
    assert status == 1 and answer["error"].startswith("password refused"), answer
    assert bcrypt.checkpw(STRONG.encode(), local_account("carla").password)
    newer = STRONG + "-2"
    assert run_op("set-password", name="carla", password=newer) == (0, {"name": "carla"})
    assert bcrypt.checkpw(newer.encode(), local_account("carla").password)
    assert run_op("set-password", name="nobody", password=newer) == (
        1,
        {"error": "no user named 'nobody'"},
    )


def test_remove_stops_the_running_servers_and_forgets_the_account(ops: LocalHub) -> None:
    """Berth stops every server itself: JupyterHub's own user deletion stops only the default
    server and refuses (a 500, the named server left running) while a named one runs, so this
    fails if `accounts.remove` leaves the stopping to JupyterHub."""
    assert run_op("add", name="leaver", admin=False, native=True, password=STRONG)[0] == 0
    default, named = ops.start_server("leaver"), ops.start_server("leaver", "lab")
    assert running(default) and running(named)
    assert run_op("remove", name="leaver") == (0, {"name": "leaver", "removed": True})
    assert not running(default), "the default server's process still runs"
    assert not running(named), "the named server's process still runs"
    assert "leaver" not in ops.users()
    assert local_account("leaver") is None and not made_by_operator("leaver")
    assert run_op("remove", name="leaver") == (1, {"error": "no user named 'leaver'"})


def test_admin_on_and_off_and_a_token(ops: LocalHub) -> None:
    assert run_op("add", name="-dash", admin=False, native=True, password=STRONG)[0] == 0
    assert run_op("admin", name="-dash", admin=True) == (0, {"name": "-dash", "admin": True})
    assert ops.api("GET", "/users/-dash").json()["admin"] is True
    assert run_op("admin", name="-dash", admin=False) == (0, {"name": "-dash", "admin": False})
    assert ops.api("GET", "/users/-dash").json()["admin"] is False
    status, answer = run_op("token", name="-dash", note="ci")
    assert status == 0 and answer["name"] == "-dash", answer
    mine = requests.get(
        ops.api_url + "/user", headers={"Authorization": f"token {answer['token']}"}, timeout=30
    )
    assert mine.json()["name"] == "-dash"
    assert run_op("token", name="ghost") == (1, {"error": "no user named 'ghost'"})


# --- ensure-listed (every `berth up`) ---------------------------------------------------------


def test_ensure_listed_again_takes_the_light_path_with_the_same_answer(ops: LocalHub) -> None:
    """The second `berth up` finds the listed accounts made: the answer comes from the REST API
    and two SQL reads (no JupyterHub or NativeAuthenticator import in the hub container), and
    it is the full path's answer for that state: no password, no note, no refusal."""
    status, first = run_op("ensure-listed", admins=["lister-admin"], users=["lister-user"])
    assert status == 0, first
    assert [(e["name"], e["admin"], "password" in e) for e in first["accounts"]] == [
        ("lister-admin", True, True),
        ("lister-user", False, True),
    ]
    settled = {
        "accounts": [
            {"name": "lister-admin", "admin": True},
            {"name": "lister-user", "admin": False},
        ]
    }
    wanted = [("lister-admin", True), ("lister-user", False)]
    assert accounts.listed_already(wanted) == settled
    assert run_op("ensure-listed", admins=["lister-admin"], users=["lister-user"]) == (0, settled)


def test_ensure_listed_light_path_steps_aside_for_a_signed_up_admin_name(ops: LocalHub) -> None:
    """Attack: someone signed up as a name berth.yaml lists as an admin (a users_info row, no
    record of the operator's). The light path must not answer "settled"; the full path refuses
    the admin rights and approves nothing."""
    local = accounts.LocalPasswords()
    local.session.add(local.model(username="squatter", password=b"x", is_authorized=False))
    local.session.commit()
    assert ops.api("POST", "/users/squatter").status_code == 201
    assert accounts.listed_already([("squatter", True)]) is None
    status, answer = run_op("ensure-listed", admins=["squatter"], users=[])
    assert status == 0, answer
    assert "refused" in answer["accounts"][0]
    assert ops.api("GET", "/users/squatter").json()["admin"] is False
    assert local_account("squatter").is_authorized is False


def test_ensure_listed_light_path_steps_aside_for_an_admin_flag_taken_away(ops: LocalHub) -> None:
    """A listed admin whose admin flag was removed gets it back at the next `berth up`, as
    before the light path."""
    status, _ = run_op("ensure-listed", admins=["demoted"], users=[])
    assert status == 0
    assert ops.api("PATCH", "/users/demoted", json={"admin": False}).status_code == 200
    assert accounts.listed_already([("demoted", True)]) is None
    assert run_op("ensure-listed", admins=["demoted"], users=[]) == (
        0,
        {"accounts": [{"name": "demoted", "admin": True}]},
    )
    assert ops.api("GET", "/users/demoted").json()["admin"] is True
