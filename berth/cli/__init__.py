"""The `berth` command: one module per command group, assembled here."""

from __future__ import annotations

import sys

import typer
from docker.errors import DockerException
from rich.markup import escape

from berth.cli import backup, deploy, doctor, images, run, snapshot, users
from berth.cli.output import console as _err
from berth.errors import BerthError
from berth.versions import BERTH_VERSION

app = typer.Typer(
    name="berth",
    help="Multi-user Jupyter on Docker: images, spawners, and a one-command deployment.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("up")(deploy.up_command)
app.command("down")(deploy.down_command)
app.command("status")(deploy.status_command)
app.command("logs")(deploy.logs_command)
app.command("backup")(backup.backup_command)
app.command("restore")(backup.restore_command)
app.command("doctor")(doctor.doctor_command)
app.add_typer(users.app, name="users")
app.command("token")(users.token_command)
app.command("run")(run.run_command)
app.add_typer(images.app, name="images")
app.add_typer(snapshot.app, name="snapshot")


@app.command()
def version() -> None:
    """Print Berth's version."""
    print(BERTH_VERSION)


def main() -> None:
    """Entry point: a BerthError becomes one clear message and exit status 1, not a traceback."""
    # Messages quote what people typed ("[/x]", a file's keys), so they are escaped: rich
    # would read them as markup, and a stray closing tag is a MarkupError.
    try:
        app()
    except BerthError as exc:
        _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        if exc.hint:
            _err.print(f"[dim]hint:[/] {escape(exc.hint)}", highlight=False)
        sys.exit(1)
    except DockerException as exc:  # an engine answer no command expected (e.g. a race)
        _err.print(
            f"[bold red]error:[/] the Docker engine said: {escape(str(exc))}", highlight=False
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
