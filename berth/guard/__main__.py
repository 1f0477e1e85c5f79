"""``python -m berth.guard --socket PATH --upstream unix:///var/run/docker.sock --prefix P``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from berth.homeroots import home_root_problem

from . import userdb
from .bodies import Limits
from .lookups import Upstream
from .server import Guard, serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m berth.guard",
        description="Serve the Docker Engine API on a unix socket, allowing only Berth's calls.",
    )
    parser.add_argument("--socket", required=True, help="the unix socket to listen on (mode 660)")
    parser.add_argument(
        "--upstream", default="unix:///var/run/docker.sock", help="the engine's socket URL"
    )
    parser.add_argument(
        "--prefix", required=True, help="the spawner prefix (label berth.prefix) of this hub"
    )
    parser.add_argument(
        "--allow-bind",
        action="append",
        default=[],
        metavar="HOSTPATH",
        help="a host path containers may bind-mount (with everything under it); repeatable",
    )
    parser.add_argument(
        "--network",
        action="append",
        default=[],
        metavar="NAME",
        help="a network containers may join ('none' always may); repeatable",
    )
    parser.add_argument(
        "--home-root",
        action="append",
        default=[],
        metavar="HOSTPATH",
        help="a directory whose children are system users' homes: a container may bind-mount "
        "one of them if it runs as its owner with the owner's groups (never root); repeatable",
    )
    parser.add_argument(
        "--user-db-from",
        metavar="DIR",
        help="the host's /etc (as mounted in the guard): passwd and group are copied from it, "
        "and homes' owners are checked against them",
    )
    parser.add_argument(
        "--user-db-to",
        metavar="DIR",
        help="where the filtered copies of passwd and group are kept (the hub reads them)",
    )
    parser.add_argument("--debug", action="store_true", help="log every connection")
    args = parser.parse_args(argv)
    if (args.user_db_from is None) != (args.user_db_to is None):
        parser.error("--user-db-from and --user-db-to go together")
    for path in args.home_root:
        if problem := home_root_problem(path):
            parser.error(f"--home-root: {problem}")
    if args.home_root and not args.user_db_from:
        parser.error("--home-root needs --user-db-from (a home's owner is checked against it)")
    if not args.prefix.strip():
        parser.error("--prefix must not be empty")
    for path in args.allow_bind:
        if not path.startswith("/"):
            parser.error(f"--allow-bind needs an absolute host path, not {path!r}")
    try:
        Upstream.from_url(args.upstream)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(
        args.prefix,
        allow_binds=tuple(args.allow_bind),
        networks=tuple(args.network),
        home_roots=tuple(args.home_root),
        user_db=args.user_db_from or "",
    )


async def run(args: argparse.Namespace) -> None:
    guard = Guard(limits_from(args), Upstream.from_url(args.upstream))
    if args.user_db_from:
        # The first copy before the socket exists: a hub that can reach the guard finds it.
        source, dest = Path(args.user_db_from), Path(args.user_db_to)
        userdb.copy_once(source, dest)
        task = asyncio.ensure_future(
            _together(serve(args.socket, guard), userdb.mirror(source, dest))
        )
    else:
        task = asyncio.ensure_future(serve(args.socket, guard))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _together(*jobs: Any) -> None:
    """Run the jobs until one ends (or fails): the guard is not healthy without all of them."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
