"""`berth run`: placeholder until the single-user runner lands (same session)."""

import typer


def run_command() -> None:
    """Run one secure notebook container for one person."""
    raise typer.Exit(2)
