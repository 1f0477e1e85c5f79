"""Account operations, run inside the hub container by `berth users …` (through docker exec).

JupyterHub's side (the user, the admin flag, tokens) goes through its REST API with the
berth-cli service token; local passwords live in NativeAuthenticator's table, written with its
own model and its own password rules. Output is one JSON document on stdout; a refusal is
{"error": "..."} and exit status 1. A password arrives in the exec's environment
(BERTH_PASSWORD), never on a command line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from berth.deploy import layout

API = f"http://127.0.0.1:{layout.HUB_API_PORT}/hub/api"


class Refused(Exception):
    pass


def user_path(name: str, rest: str = "") -> str:
    """/users/<name><rest>, the name escaped: `?`, `#`, `/` or `%` must not change the URL."""
    return f"/users/{quote(name, safe='')}{rest}"


def api(method: str, path: str, body: dict | None = None) -> Any:
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
    return json.loads(payload) if payload else None


class LocalPasswords:
    """NativeAuthenticator's users_info table, with its password-strength rules."""

    def __init__(self) -> None:
        from jupyterhub import orm
        from nativeauthenticator import NativeAuthenticator
        from nativeauthenticator.orm import UserInfo
        from traitlets.config.loader import PyFileConfigLoader

        config = PyFileConfigLoader(layout.CONFIG_FILE).load_config()
        if "native" not in str(config.JupyterHub.get("authenticator_class", "")):
            raise Refused("local passwords exist only with auth type native (see berth.yaml)")
        self.rules = NativeAuthenticator(add_new_table=False, config=config)
        self.session = orm.new_session_factory(config.JupyterHub.db_url)()
        self.model = UserInfo

    def find(self, name: str):
        return self.model.find(self.session, name)

    def check_strength(self, password: str) -> None:
        if not self.rules.is_password_strong(password):
            raise Refused(
                f"password refused: at least {self.rules.minimum_password_length} characters, "
                "and not a common password"
            )

    def authorize(self, name: str) -> None:
        info = self.find(name)
        if info is not None:
            info.is_authorized = True
            self.session.commit()

    def set(self, name: str, password: str) -> None:
        import bcrypt

        self.check_strength(password)
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
        info = self.find(name)
        if info is None:
            self.session.add(self.model(username=name, password=hashed, is_authorized=True))
        else:
            info.password, info.is_authorized = hashed, True
        self.session.commit()

    def remove(self, name: str) -> None:
        info = self.find(name)
        if info is not None:
            self.session.delete(info)
            self.session.commit()


def _password() -> tuple[str, bool]:
    given = os.environ.get("BERTH_PASSWORD")
    return (given, False) if given else (secrets.token_urlsafe(12), True)


def _hub_user(name: str) -> dict | None:
    try:
        return api("GET", user_path(name))
    except Refused:
        return None


def add(name: str, admin: bool, native: bool, exist_ok: bool = False) -> dict:
    result: dict[str, Any] = {"name": name, "admin": admin, "created": False}
    user = _hub_user(name)
    if user is not None and not exist_ok:
        raise Refused(f"user {name!r} already exists")
    local = LocalPasswords() if native else None
    password, generated = _password()
    if local is not None:
        local.check_strength(password)  # before anything is created: no half-made user
    if user is None:
        api("POST", user_path(name), {"admin": admin})
        result["created"] = True
    elif admin and not user.get("admin"):
        api("PATCH", user_path(name), {"admin": True})
    if local is not None:
        info = local.find(name)
        if info is None:
            local.set(name, password)
            if generated:
                result["password"] = password
            result["created"] = True
        elif not info.is_authorized:
            local.authorize(name)  # signed up earlier and waiting: the operator vouches now
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="berth-accounts")
    sub = parser.add_subparsers(dest="op", required=True)
    for op in ("add", "ensure"):
        cmd = sub.add_parser(op)
        cmd.add_argument("name")
        cmd.add_argument("--admin", action="store_true")
        cmd.add_argument("--native", action="store_true")
    sub.add_parser("remove").add_argument("name")
    sub.add_parser("list")
    sub.add_parser("set-password").add_argument("name")
    admin = sub.add_parser("admin")
    admin.add_argument("name")
    admin.add_argument("state", choices=("on", "off"))
    token = sub.add_parser("token")
    token.add_argument("name")
    token.add_argument("--note", default="berth token")
    args = parser.parse_args(argv)
    try:
        out = run(args)
    except Refused as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(out))
    return 0


def run(args: argparse.Namespace) -> Any:
    if args.op in ("add", "ensure"):
        return add(args.name, args.admin, args.native, exist_ok=args.op == "ensure")
    if args.op == "remove":
        user = _hub_user(args.name)
        if user is None:
            raise Refused(f"no user named {args.name!r}")
        for server in user.get("servers") or {}:
            api(
                "DELETE",
                user_path(args.name, f"/servers/{quote(server, safe='')}")
                if server
                else user_path(args.name, "/server"),
            )
        api("DELETE", user_path(args.name))
        with contextlib.suppress(Refused):  # not native auth: nothing stored locally
            LocalPasswords().remove(args.name)
        return {"name": args.name, "removed": True}
    if args.op == "list":
        return api("GET", "/users")
    if args.op == "set-password":
        if _hub_user(args.name) is None:
            raise Refused(f"no user named {args.name!r}")
        password, generated = _password()
        LocalPasswords().set(args.name, password)
        return {"name": args.name, **({"password": password} if generated else {})}
    if args.op == "admin":
        if _hub_user(args.name) is None:
            raise Refused(f"no user named {args.name!r}")
        api("PATCH", user_path(args.name), {"admin": args.state == "on"})
        return {"name": args.name, "admin": args.state == "on"}
    if args.op == "token":
        if _hub_user(args.name) is None:
            raise Refused(f"no user named {args.name!r}")
        made = api("POST", user_path(args.name, "/tokens"), {"note": args.note})
        return {"name": args.name, "token": made["token"]}
    raise Refused(f"unknown operation {args.op}")


if __name__ == "__main__":
    sys.exit(main())
