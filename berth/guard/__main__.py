"""``python -m berth.guard --socket PATH --upstream unix:///var/run/docker.sock --prefix P``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from .bodies import Limits
from .server import Guard, Upstream, serve


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
    parser.add_argument("--debug", action="store_true", help="log every connection")
    args = parser.parse_args(argv)
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


async def run(args: argparse.Namespace) -> None:
    limits = Limits(args.prefix, tuple(args.allow_bind), tuple(args.network))
    guard = Guard(limits, Upstream.from_url(args.upstream))
    task = asyncio.ensure_future(serve(args.socket, guard))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


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
