"""`berth backup` and `berth restore`: archives of the hub's data and the users' volumes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from berth import engine_client
from berth.cli.options import ConfigOption, load, username
from berth.cli.output import console
from berth.deploy import backup, restore
from berth.errors import BerthError

UsersArgument = Annotated[list[str] | None, typer.Argument(help="User names.", show_default=False)]


def backup_command(
    users: UsersArgument = None,
    everything: Annotated[
        bool, typer.Option("--all", help="The hub's data and every user's volume.")
    ] = False,
    to: Annotated[
        Path, typer.Option("--to", help="Directory for the archive (created with mode 700).")
    ] = Path("berth-backups"),
    keep: Annotated[
        int | None, typer.Option(help="Afterwards, delete all but the newest N archives there.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Back up while the service runs: the hub's data (--all) or some users' volumes."""
    names = [username(value) for value in users or []]
    if bool(names) == everything:
        raise BerthError("name the users to back up, or pass --all (not both)")
    if keep is not None and keep < 1:
        raise BerthError("--keep must be at least 1")
    cfg = load(config)
    client = engine_client.connect()
    path = backup.backup(
        client, cfg, names, everything, to, say=lambda text: console.print(f"  {text}")
    )
    console.print(f"[bold green]backup written:[/] {path} (mode 600: it holds the hub's secrets)")
    print(path)
    if keep is not None:
        for old in backup.prune(to, keep):
            console.print(f"  deleted the older backup {old}")


def restore_command(
    archive: Annotated[Path, typer.Argument(help="A backup made by `berth backup`.")],
    users: UsersArgument = None,
    force_foreign: Annotated[
        bool,
        typer.Option(help="Accept a backup of another deployment (e.g. on a new machine)."),
    ] = False,
    replace: Annotated[
        bool, typer.Option(help="Replace user volumes that exist (their files are lost).")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Only verify the archive; change nothing.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Restore everything, or some users' volumes, after verifying the whole archive."""
    names = [username(value) for value in users or []]
    if not archive.is_file():
        raise BerthError(f"no such archive: {archive}")
    cfg = load(config)
    client = engine_client.connect()
    if check:
        verified = restore.verify_only(client, cfg, archive, force_foreign)
        volumes = verified.manifest.get("volumes") or {}
        hub = ", the hub's data" if verified.manifest.get("hub") else ""
        console.print(
            f"[green]{archive} is intact[/]: {len(verified.entries)} entries, "
            f"{len(volumes)} user volume(s){hub}"
        )
        return
    plan = restore.restore(
        client,
        cfg,
        archive,
        names,
        force_foreign,
        replace,
        say=lambda text: console.print(f"  {text}"),
    )
    restored = [*(["the hub's data"] if plan.hub else []), *plan.volumes]
    console.print(f"[bold green]restored and verified:[/] {', '.join(restored) or 'nothing'}")
