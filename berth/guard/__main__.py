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

from berth import engine_socket
from berth.homeroots import home_root_problem
from berth.spawner import limits

from . import userdb
from .bodies import Limits, SwarmLimits
from .lookups import Upstream
from .server import Guard, serve
from .upstream_watch import watch


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
    swarm_arguments(parser)
    args = parser.parse_args(argv)
    if args.swarm and (args.home_root or args.allow_bind):
        parser.error("--swarm allows no host paths (--home-root, --allow-bind)")
    if args.swarm and not (args.image and args.volume_template):
        parser.error("--swarm needs --image and --volume-template")
    for option in args.volume_opt:
        if "=" not in option:
            parser.error(f"--volume-opt takes KEY=VALUE, not {option!r}")
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


def swarm_arguments(parser: argparse.ArgumentParser) -> None:
    """A Swarm manager's guard: what a user's service may be (see .services)."""
    group = parser.add_argument_group("Swarm (the hub runs the Swarm spawner)")
    group.add_argument(
        "--swarm", action="store_true", help="allow the Swarm spawner's calls, and nothing else"
    )
    group.add_argument(
        "--image", action="append", default=[], help="an image a server may run; repeatable"
    )
    group.add_argument(
        "--volume-template",
        action="append",
        default=[],
        help="a volume name template of the users' volumes",
    )
    group.add_argument("--volume-driver", default="", help="the driver of users' volumes")
    group.add_argument(
        "--volume-opt", action="append", default=[], metavar="KEY=VALUE", help="its options"
    )
    group.add_argument(
        "--placement-constraint",
        action="append",
        default=[],
        help="a constraint every server must keep",
    )
    group.add_argument(
        "--reserved-name", action="append", default=[], help="a service name no server may take"
    )
    # Unset: the spawner's own defaults, for this host (the guard runs beside the hub).
    group.add_argument("--max-memory", type=int, help="bytes; 0: no limit required")
    group.add_argument("--max-cpus", type=float, help="CPUs; 0: no limit required")
    group.add_argument("--max-pids", type=int, help="processes; 0: no limit required")


def swarm_limits_from(args: argparse.Namespace) -> SwarmLimits:
    return SwarmLimits(
        images=tuple(args.image),
        volume_templates=tuple(args.volume_template),
        volume_driver=args.volume_driver,
        volume_options=tuple((o.split("=", 1)[0], o.split("=", 1)[1]) for o in args.volume_opt),
        max_memory=limits.default_mem_limit() if args.max_memory is None else args.max_memory,
        max_cpus=limits.default_cpu_limit() if args.max_cpus is None else args.max_cpus,
        max_pids=limits.DEFAULT_PIDS_LIMIT if args.max_pids is None else args.max_pids,
        constraints=tuple(args.placement_constraint),
        reserved_names=tuple(args.reserved_name),
    )


def limits_from(args: argparse.Namespace) -> Limits:
    return Limits(
        args.prefix,
        allow_binds=tuple(args.allow_bind),
        networks=tuple(args.network),
        home_roots=tuple(args.home_root),
        user_db=args.user_db_from or "",
        swarm=swarm_limits_from(args) if args.swarm else None,
    )


async def run(args: argparse.Namespace) -> None:
    """Serve until stopped; raise EngineLost when the engine's socket went stale."""
    upstream = Upstream.from_url(args.upstream)
    guard = Guard(limits_from(args), upstream)
    jobs = [serve(args.socket, guard), watch(upstream.socket_path)]
    if args.user_db_from:
        # The first copy before the socket exists: a hub that can reach the guard finds it.
        source, dest = Path(args.user_db_from), Path(args.user_db_to)
        userdb.copy_once(source, dest)
        jobs.append(userdb.mirror(source, dest))
    task = asyncio.ensure_future(_together(*jobs))
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
        await asyncio.gather(*tasks, return_exceptions=True)  # e.g. the socket is removed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(run(args))
    except engine_socket.EngineLost as exc:  # its restart policy starts it with the new socket
        logging.getLogger("berth.guard").error("%s", exc)
        return engine_socket.EXIT_ENGINE_LOST
    return 0


if __name__ == "__main__":
    sys.exit(main())
