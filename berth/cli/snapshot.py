"""`berth snapshot …`: a user's running server committed into an image they can start again."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from berth import engine_client
from berth.cli.options import ConfigOption, load
from berth.cli.output import console
from berth.config.fields import check_username
from berth.deploy import accounts, snapshots
from berth.deploy.hub import exec_accounts
from berth.deploy.layout import SPAWNER_PREFIX
from berth.errors import BerthError

app = typer.Typer(
    help="Snapshots of users' servers, which only their owner (and the users an admin shares "
    "them with) can start.",
    no_args_is_help=True,
)


def _name(value: str) -> str:
    try:
        return check_username(value)
    except ValueError as exc:
        raise BerthError(f"invalid user name {value!r}: {exc}") from None


def _mb(size: int) -> str:
    return f"{size / 1e6:,.0f} MB"


@app.command("take")
def take_command(
    user: Annotated[str, typer.Argument(help="Whose running server.")],
    name: Annotated[str, typer.Option(help="The snapshot's name (default: the time).")] = "",
    server: Annotated[str, typer.Option(help="A named server of the user.")] = "",
    config: ConfigOption = None,
) -> None:
    """Commit USER's running server into an image USER can pick at their next start."""
    user = _name(user)
    if name:
        snapshots.check_name(name)
    cfg = load(config)
    if cfg.backend != "docker":
        raise BerthError(
            f"snapshots work with backend: docker only, not {cfg.backend!r}",
            hint=snapshots.UNSUPPORTED_HINT[cfg.backend],
        )
    client = engine_client.connect()
    taken = snapshots.take(client, SPAWNER_PREFIX, user, server, name)
    console.print(
        f"[bold green]snapshot taken:[/] {taken.image} ({_mb(taken.size)}); {user} sees it "
        f"as 'Snapshot {taken.name}' on the start page"
    )
    print(taken.image)
    for old in snapshots.prune(client, SPAWNER_PREFIX, user, cfg.snapshots.keep):
        console.print(f"  removed the older snapshot {old.image} (snapshots.keep)")


@app.command("list")
def list_command(
    user: Annotated[str | None, typer.Argument(help="Only this user's.")] = None,
) -> None:
    """This deployment's snapshots, oldest first, with their sizes."""
    owner = _name(user) if user else None
    client = engine_client.connect()
    found = snapshots.snapshots(client, SPAWNER_PREFIX, owner)
    table = Table("user", "name", "server", "taken (UTC)", "size", "shared with", "image")
    for snap in found:
        table.add_row(
            snap.owner,
            snap.name,
            snap.server,
            snap.taken,
            _mb(snap.size),
            ", ".join(snap.shared),
            snap.image,
        )
    console.print(table if found else "no snapshots")


@app.command("remove")
def remove_command(
    user: Annotated[str, typer.Argument(help="Whose snapshot.")],
    name: Annotated[str, typer.Argument(help="Its name (see `berth snapshot list`).")],
) -> None:
    """Remove one of USER's snapshots (servers started from it keep running)."""
    user, name = _name(user), snapshots.check_name(name)  # before the engine is asked
    client = engine_client.connect()
    removed = snapshots.remove(client, SPAWNER_PREFIX, user, name)
    console.print(f"removed {removed.image}")


@app.command("share")
def share_command(
    user: Annotated[str, typer.Argument(help="Whose snapshot.")],
    name: Annotated[str, typer.Argument(help="Its name (see `berth snapshot list`).")],
    to: Annotated[list[str], typer.Argument(help="The users who may start it too.")],
) -> None:
    """Let other users (of the hub) start a server from USER's snapshot NAME too."""
    user, name = _name(user), snapshots.check_name(name)
    wanted = [_name(other) for other in to]
    client = engine_client.connect()
    known = [entry["name"] for entry in exec_accounts(client, accounts.request("list"))]
    shared = snapshots.share(client, SPAWNER_PREFIX, user, name, wanted, known)
    console.print(f"{shared.image} is shared with {', '.join(shared.shared)}")


@app.command("unshare")
def unshare_command(
    user: Annotated[str, typer.Argument(help="Whose snapshot.")],
    name: Annotated[str, typer.Argument(help="Its name (see `berth snapshot list`).")],
    to: Annotated[list[str], typer.Argument(help="The users who may no longer start it.")],
) -> None:
    """Stop sharing USER's snapshot NAME (their running servers keep running)."""
    user, name = _name(user), snapshots.check_name(name)
    wanted = [_name(other) for other in to]
    client = engine_client.connect()
    left = snapshots.unshare(client, SPAWNER_PREFIX, user, name, wanted)
    console.print(f"{left.image} is shared with {', '.join(left.shared) or 'nobody'}")
