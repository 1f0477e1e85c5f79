"""`berth users …` and `berth token`: accounts on the running hub."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from berth import engine_client
from berth.cli.options import ConfigOption, load, new_username, username
from berth.cli.output import console
from berth.deploy import accounts
from berth.deploy.hub import exec_accounts
from berth.errors import BerthError

app = typer.Typer(help="Manage the hub's users.", no_args_is_help=True)


def _password(ask: bool) -> dict[str, str]:
    """A password typed twice on a terminal, or none (the hub makes one and shows it once)."""
    if not ask:
        return {}
    if not sys.stdin.isatty():
        secret = sys.stdin.readline().rstrip("\n")
    else:
        secret = getpass.getpass("password: ")
        if getpass.getpass("again: ") != secret:
            raise BerthError("the two passwords differ")
    if not secret:
        raise BerthError("no password given (nothing was changed)")
    return {"BERTH_PASSWORD": secret}


def _native(config: Path | None) -> bool:
    return load(config).auth.type == "native"


@app.command("add")
def add(
    name: str,
    admin: Annotated[bool, typer.Option(help="Make the user an admin.")] = False,
    password: Annotated[
        bool, typer.Option(help="Type a password (or pipe it on stdin) instead of a generated one.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Add a user (with local accounts: a password, generated unless --password)."""
    name = new_username(name)
    native = _native(config)
    wanted = accounts.request("add", name=name, admin=admin, native=native)
    answer = exec_accounts(engine_client.connect(), wanted, _password(password and native))
    console.print(f"added {answer['name']}" + (" (admin)" if admin else ""))
    if "password" in answer:
        console.print(f"one-time password: [bold]{answer['password']}[/] (shown once)")


@app.command("remove")
def remove(name: str) -> None:
    """Remove a user (their server stops; their files volume is kept)."""
    name = username(name)
    exec_accounts(engine_client.connect(), accounts.request("remove", name=name))
    console.print(f"removed {name}; the user's volume is kept")


@app.command("list")
def list_users() -> None:
    """List users, whether they are admins, and their servers."""
    users = exec_accounts(engine_client.connect(), accounts.request("list"))
    out = Console()
    if not out.is_terminal:
        for user in users:
            running = ",".join(name or "default" for name in (user.get("servers") or {}))
            print(f"{user['name']}\t{'admin' if user.get('admin') else 'user'}\t{running}")
        return
    table = Table("user", "admin", "servers", "last activity")
    for user in users:
        servers = ", ".join(name or "(default)" for name in (user.get("servers") or {}))
        table.add_row(
            user["name"],
            "yes" if user.get("admin") else "",
            servers,
            (user.get("last_activity") or "")[:19],
        )
    out.print(table)


@app.command("set-password")
def set_password(name: str) -> None:
    """Set a local user's password (typed twice, or piped on stdin)."""
    name = username(name)
    wanted = accounts.request("set-password", name=name)
    answer = exec_accounts(engine_client.connect(), wanted, _password(True))
    console.print(f"password of {answer['name']} changed")
    if "password" in answer:
        console.print(f"new password: [bold]{answer['password']}[/] (shown once)")


@app.command("admin")
def admin(name: str, state: Annotated[str, typer.Argument(help="on or off")]) -> None:
    """Make a user an admin (on) or not (off)."""
    if state not in ("on", "off"):
        raise BerthError(f"admin takes 'on' or 'off', not {state!r}")
    name = username(name)
    wanted = accounts.request("admin", name=name, admin=state == "on")
    exec_accounts(engine_client.connect(), wanted)
    console.print(f"{name} is {'now' if state == 'on' else 'no longer'} an admin")


def token_command(
    name: Annotated[str, typer.Argument(help="User (an admin, for automation).")],
    note: Annotated[str, typer.Option(help="Note stored with the token.")] = "berth token",
) -> None:
    """Print a new API token for a user (for scripts using JupyterHub's REST API)."""
    name = username(name)
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:
        raise BerthError("--note is not valid UTF-8 text") from None
    answer = exec_accounts(engine_client.connect(), accounts.request("token", name=name, note=note))
    print(answer["token"])
