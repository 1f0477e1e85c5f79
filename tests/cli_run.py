"""`berth ARGS` run in the test's process exactly as the console script runs it (sys.argv, the
real entry point, its exit status), with the environment and stdin a test gives."""

from __future__ import annotations

import sys

from typer.testing import CliRunner

from berth.cli import main


def run_berth(*args: str, env: dict[str, str], stdin: str = "") -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `berth ARGS`."""
    with CliRunner().isolation(input=stdin, env=env) as (stdout, stderr, _):
        saved, sys.argv = sys.argv, ["berth", *args]
        try:
            main()
            status = 0
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            sys.argv = saved
            sys.stdout.flush()  # the runner's text streams buffer
            sys.stderr.flush()
        return (
            status,
            stdout.getvalue().decode("utf-8", "replace"),
            stderr.getvalue().decode("utf-8", "replace"),
        )
