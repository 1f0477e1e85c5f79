"""Account operations, run inside the hub container by `berth users …` (through docker exec).

JupyterHub's side (the user, the admin flag, tokens) goes through its REST API with the
berth-cli service token; local passwords live in NativeAuthenticator's table, written with its
own model and its own password rules, and every account made here is recorded as the
operator's (berth/auth/ledger.py) so that it can be told from one made by a sign-up. Output is
one JSON document on stdout; a refusal is {"error": "..."} and exit status 1. The request
is one JSON object argument, ``{"op": ..., **fields}`` (:func:`request`). A password
arrives in the exec's environment (BERTH_PASSWORD), never on a command line.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from berth.deploy import accounts_settled, layout

API = f"http://127.0.0.1:{layout.HUB_API_PORT}/hub/api"
# A JSON object: a body sent to or read from the hub's REST API, or what an operation prints.
JsonObject = dict[str, Any]


class Refused(Exception):
    pass


def user_path(name: str, rest: str = "") -> str:
    """/users/<name><rest>, the name escaped: `?`, `#`, `/` or `%` must not change the URL."""
    return f"/users/{quote(name, safe='')}{rest}"


def api(method: str, path: str, body: JsonObject | None = None) -> Any:
    with open(layout.CLI_TOKEN_FILE, encoding="utf-8") as handle:
        token = handle.read().strip()
    request = urllib.request.Request(
        API + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            payload = answer.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        with contextlib.suppress(ValueError):
            detail = json.loads(detail).get("message", detail)
        raise Refused(f"the hub refused {method} {path}: {detail}") from exc
    except urllib.error.URLError as exc:
        raise Refused(f"the hub's API does not answer ({exc.reason}); is it starting?") from exc
    except TimeoutError as exc:  # connected, but no answer within the timeout
        raise Refused("the hub's API did not answer within 30 s; is it starting?") from exc
    return json.loads(payload) if payload else None


SIGNED_UP = "was made by someone signing up on /hub/signup, not by Berth"
ADMIN_REFUSED = (
    "users.admins lists {name!r}, but the account {name!r} " + SIGNED_UP + ", so Berth does "
    "not make it an admin (whoever signs up first gets a name). If the account is really "
    "{name}'s, make it an admin yourself: `berth users admin {name} on`. If not: `berth users "
    "remove {name}`, delete (or inspect) the volume of its files, since a stranger may have "
    "left files there that would run in the admin's server, and run `berth up` again: it "
    "makes a new account with a one-time password."
)
PENDING_NOTE = (
    "{name!r} is listed but its account " + SIGNED_UP + " and waits for approval: Berth "
    "does not approve sign-ups. Approve it on /hub/authorize if it is really {name}'s, or "
    "`berth users remove {name}` and run `berth up` to make a new account."
)


class LocalPasswords:
    """NativeAuthenticator's users_info table, with its password-strength rules, and Berth's
    record of the accounts the operator's tools made."""

    def __init__(self) -> None:
        from jupyterhub import orm
        from nativeauthenticator import NativeAuthenticator
        from nativeauthenticator.orm import UserInfo
        from traitlets.config.loader import PyFileConfigLoader

        from berth.auth import ledger

        config = PyFileConfigLoader(layout.CONFIG_FILE).load_config()
        if "native" not in str(config.JupyterHub.get("authenticator_class", "")):
            raise Refused("local passwords exist only with auth type native (see berth.yaml)")
        self.rules = NativeAuthenticator(add_new_table=False, config=config)
        self.session = orm.new_session_factory(config.JupyterHub.db_url)()
        self.model = UserInfo
        self.ledger = ledger
        ledger.ensure_table(self.session)

    def find(self, name: str) -> Any:  # NativeAuthenticator's UserInfo row (untyped), or None
        return self.model.find(self.session, name)

    def made_by_operator(self, name: str) -> bool:
        return self.ledger.made_by_operator(self.session, name)

    def generate(self) -> str:
        """A random password that passes the configured rules (16 characters at least)."""
        length = max(16, self.rules.minimum_password_length)
        return secrets.token_urlsafe(length)[:length]

    def check_strength(self, password: str) -> None:
        if not self.rules.is_password_strong(password):
            raise Refused(
                f"password refused: at least {self.rules.minimum_password_length} characters, "
                "and not a common password"
            )

    def set(self, name: str, password: str, made_by: str | None = None) -> None:
        """Set the password (approving the account); `made_by` records a new account as the
        operator's. A new password alone does not: the account's tokens stay valid."""
        import bcrypt

        self.check_strength(password)
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
        info = self.find(name)
        if info is None:
            self.session.add(self.model(username=name, password=hashed, is_authorized=True))
        else:
            info.password, info.is_authorized = hashed, True
        self.session.commit()
        if made_by is not None:
            self.ledger.record(self.session, name, made_by)

    def remove(self, name: str) -> bool:
        info = self.find(name)
        if info is not None:
            self.session.delete(info)
            self.session.commit()
        self.ledger.forget(self.session, name)
        return info is not None


def _password(local: LocalPasswords | None = None) -> tuple[str, bool]:
    given = os.environ.get("BERTH_PASSWORD")
    if given:
        return given, False
    return (local.generate() if local else secrets.token_urlsafe(12)), True


def _hub_user(name: str) -> JsonObject | None:
    try:
        user: JsonObject = api("GET", user_path(name))
    except Refused:
        return None
    return user


def add(name: str, admin: bool, native: bool) -> JsonObject:
    """`berth users add`: a new user, with a local account when `native`."""
    if _hub_user(name) is not None:
        raise Refused(f"user {name!r} already exists")
    local = LocalPasswords() if native else None
    password, generated = _password(local)
    if local is not None:
        info = local.find(name)
        if info is not None and not local.made_by_operator(name):
            # Approving it here would hand the name to whoever signed up first.
            if info.is_authorized:
                what = "is approved already (an admin approved it)"
            else:
                what = f"waits for approval: if it is really {name}'s, approve it on /hub/authorize"
            raise Refused(
                f"an account {name!r} {SIGNED_UP} and {what}. If it is not {name}'s, "
                f"`berth users remove {name}` first"
            )
        local.check_strength(password)  # before anything is created: no half-made user
    api("POST", user_path(name), {"admin": admin})
    result: JsonObject = {"name": name, "admin": admin, "created": True}
    if local is not None and local.find(name) is None:
        local.set(name, password, made_by="berth users add")
        if generated:
            result["password"] = password
    return result


def ensure_listed(admins: list[str], users: list[str]) -> JsonObject:
    """`berth up`: an account for every name in berth.yaml (local accounts only).

    Missing accounts are made, with a one-time password each, and recorded as the operator's.
    An account that a sign-up made is never approved nor made an admin here: for an admin
    name that is a refusal (with what to do), for other names a note when it waits.
    """
    wanted = [(name, True) for name in admins]
    wanted += [(name, False) for name in users if name not in admins]
    done = listed_already(wanted)
    if done is not None:
        return done
    local = LocalPasswords()
    accounts = []
    for name, admin in wanted:
        entry: JsonObject = {"name": name, "admin": admin}
        user = _hub_user(name)
        info = local.find(name)
        is_admin = bool(user and user.get("admin"))
        if info is None or local.made_by_operator(name):
            if user is None:
                api("POST", user_path(name), {"admin": admin})
            elif admin and not is_admin:
                api("PATCH", user_path(name), {"admin": True})
            if info is None:
                password = local.generate()
                local.set(name, password, made_by="berth up")
                entry["password"] = password
        elif admin and not is_admin:
            entry["refused"] = ADMIN_REFUSED.format(name=name)
        elif not info.is_authorized:
            entry["note"] = PENDING_NOTE.format(name=name)
        accounts.append(entry)
    return {"accounts": accounts}


def listed_already(wanted: list[tuple[str, bool]]) -> JsonObject | None:
    """What :func:`ensure_listed` answers when nothing is to be done (see
    berth.deploy.accounts_settled), the hub's users looked up through its REST API; None when
    the full path must decide."""
    return accounts_settled.listed_already(wanted, _hub_user)


def existing_user(name: str) -> JsonObject:
    """The hub's user ``name``; refused when there is none."""
    user = _hub_user(name)
    if user is None:
        raise Refused(f"no user named {name!r}")
    return user


def list_users() -> Any:
    """`berth users list` and `berth status`: JupyterHub's users, with their servers."""
    return api("GET", "/users")


def set_password(name: str) -> JsonObject:
    """`berth users set-password`: the password given (BERTH_PASSWORD), or a generated one."""
    existing_user(name)
    password, generated = _password()
    LocalPasswords().set(name, password)
    return {"name": name, **({"password": password} if generated else {})}


def set_admin(name: str, admin: bool) -> JsonObject:
    """`berth users admin NAME on|off`."""
    existing_user(name)
    api("PATCH", user_path(name), {"admin": admin})
    return {"name": name, "admin": admin}


def token(name: str, note: str = "berth token") -> JsonObject:
    """`berth token`: a new API token of the user's."""
    existing_user(name)
    made = api("POST", user_path(name, "/tokens"), {"note": note})
    return {"name": name, "token": made["token"]}


def remove(name: str) -> JsonObject:
    """The hub user and the local account; either may exist alone (a sign-up waiting for
    approval has no hub user yet)."""
    user = _hub_user(name)
    local = None
    with contextlib.suppress(Refused):  # not native auth: nothing stored locally
        local = LocalPasswords()
    if user is None and (local is None or local.find(name) is None):
        raise Refused(f"no user named {name!r}")
    if user is not None:
        for server in user.get("servers") or {}:
            api(
                "DELETE",
                user_path(name, f"/servers/{quote(server, safe='')}")
                if server
                else user_path(name, "/server"),
            )
        _wait_stopped(name)
        api("DELETE", user_path(name))
    if local is not None:
        local.remove(name)
    return {"name": name, "removed": True}


STOP_WAIT_SECONDS = 120.0


def _wait_stopped(name: str, timeout: float = STOP_WAIT_SECONDS) -> None:
    """Until the hub lists none of the user's servers. A stop that outlasts the hub's
    slow_stop_timeout (10 s: a busy machine, a server slow to end its kernels) is answered 202
    and goes on, and the hub refuses to delete a user while a server of theirs is stopping."""
    deadline = time.monotonic() + timeout
    while (user := _hub_user(name)) is not None and user.get("servers"):
        if time.monotonic() > deadline:
            left = {server: model.get("pending") for server, model in user["servers"].items()}
            raise Refused(f"{name}'s servers did not stop within {timeout:.0f} s: {left}")
        time.sleep(0.5)


# The operations, by the name a request gives; each takes the request's other fields as its
# keyword arguments (a JSON object, so a name starting with "-" is just a value).
OPERATIONS: dict[str, Callable[..., Any]] = {
    "add": add,
    "ensure-listed": ensure_listed,
    "remove": remove,
    "list": list_users,
    "set-password": set_password,
    "admin": set_admin,
    "token": token,
}


def request(op: str, **fields: Any) -> dict[str, Any]:
    """What the host asks of this tool: ``{"op": op, **fields}``, checked against the
    operation's parameters before anything is sent."""
    if op not in OPERATIONS:
        raise ValueError(f"unknown account operation {op!r}")
    inspect.signature(OPERATIONS[op]).bind(**fields)  # TypeError: a missing or unknown field
    return {"op": op, **fields}


def dispatch(wanted: Any) -> Any:
    """Run the operation a request (a decoded JSON object) names."""
    op = wanted.get("op") if isinstance(wanted, dict) else None
    if op not in OPERATIONS:
        raise Refused(f"unknown operation {op!r}")
    fields = {key: value for key, value in wanted.items() if key != "op"}
    try:
        inspect.signature(OPERATIONS[op]).bind(**fields)
    except TypeError as exc:
        raise Refused(f"{op}: {exc}") from None
    return OPERATIONS[op](**fields)


def main(argv: list[str] | None = None) -> int:
    """``python -m berth.deploy.accounts REQUEST``: REQUEST is one JSON object (:func:`request`)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        if len(argv) != 1:
            raise Refused("expected one argument: the request, a JSON object")
        try:
            wanted = json.loads(argv[0])
        except ValueError:
            raise Refused("the request is not JSON") from None
        out = dispatch(wanted)
    except Refused as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
