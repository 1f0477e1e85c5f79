"""`berth doctor`: what is wrong with this host, engine or service, and how to fix it."""

from __future__ import annotations

import typer
from rich.markup import escape

from berth.cli.options import ConfigOption, load
from berth.cli.output import console
from berth.doctor import run

MARKS = {
    "ok": "[green]ok  [/]",
    "warn": "[yellow]warn[/]",
    "fail": "[bold red]FAIL[/]",
    "skip": "[dim]skip[/]",
}


def doctor_command(config: ConfigOption = None) -> None:
    """Check the engine, the host and the service; explain each problem with its fix."""
    findings = run.diagnose(load(config))
    for finding in findings:
        console.print(
            f"{MARKS[finding.status]} {finding.check}: {escape(finding.summary)}", highlight=False
        )
        if finding.fix and finding.status in ("warn", "fail"):
            console.print(f"       [dim]fix:[/] {escape(finding.fix)}", highlight=False)
    failed = sum(f.status == "fail" for f in findings)
    warned = sum(f.status == "warn" for f in findings)
    console.print(f"{failed} problem(s), {warned} warning(s)")
    if failed:
        raise typer.Exit(1)
