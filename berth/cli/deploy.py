"""`berth up`, `berth down`, `berth status`, `berth logs`: the multi-user service."""

from __future__ import annotations

import sys
from typing import Annotated

import docker
import typer
from docker.errors import APIError
from rich.console import Console
from rich.table import Table

from berth import engine_client
from berth.cli.options import CaBundleOption, ConfigOption, load, username
from berth.cli.output import console, stack_builder
from berth.config.egress import EgressConfig
from berth.config.schema import BerthConfig, LimitsConfig
from berth.deploy import status, swarm_status, swarm_up, up
from berth.errors import BerthError
from berth.images import catalog, provision
from berth.spawner import limits


def up_command(config: ConfigOption = None, ca_bundle: CaBundleOption = None) -> None:
    """Start the multi-user service, or apply a changed berth.yaml (idempotent)."""
    cfg = load(config)
    client = engine_client.connect()
    # (A Swarm node cannot have live-restore: dockerd refuses it in swarm mode.)
    if cfg.backend != "swarm" and not client.info().get("LiveRestoreEnabled"):
        console.print(
            "[yellow]note:[/] the engine's live-restore is off: user servers stop whenever "
            'dockerd restarts. Set {"live-restore": true} in /etc/docker/daemon.json '
            "(scripts/start-dockerd.sh does this on a machine without that file)."
        )
    hub_image = catalog.HUB_IMAGE.tag("latest")
    allowed = cfg.images.allowed
    notebook_images = [
        cfg.images.default,
        *(allowed.values() if isinstance(allowed, dict) else allowed),
    ]
    if cfg.backend == "swarm":
        registry_image = catalog.get("registry").tag("latest")
        wanted = provision.to_build(client, [hub_image, registry_image, *notebook_images])
    else:
        wanted = provision.to_build(client, [hub_image, *notebook_images])
    if wanted:
        console.print(f"building {', '.join(wanted)} (missing or older than this Berth)")
        stack_builder(client, ca_bundle)(wanted)
    if cfg.backend == "swarm":
        result = swarm_up.apply(
            client, cfg, hub_image, registry_image, say=lambda text: console.print(text)
        )
    else:
        result = up.apply(client, cfg, hub_image, say=lambda text: console.print(text))
    if not result.changed:
        console.print("[green]Berth is up; nothing changed.[/]")
    else:
        for change in result.changes:
            console.print(f"  changed: {change}")
        console.print("[bold green]Berth is up.[/]")
    console.print(f"URL: {result.url}")
    console.print(f"each user server: {_limits_line(cfg.limits)} (limits in berth.yaml)")
    console.print(f"user servers reach: {_egress_line(cfg.egress)} (egress in berth.yaml)")
    accounts = result.accounts
    for name, password, admin in accounts.made:
        console.print(
            f"{'admin' if admin else 'user'}: [bold]{name}[/]  "
            f"one-time password: [bold]{password}[/]"
        )
    if accounts.made:
        console.print("  (shown once; change them at /hub/change-password after logging in)")
    for note in accounts.notes:
        console.print(f"[yellow]note:[/] {note}")
    if accounts.refused:
        raise BerthError("\n".join(accounts.refused))


def _egress_line(egress: EgressConfig) -> str:
    reach = {
        "public": "the public internet, no private or reserved address",
        "none": "the hub only",
        "all": "everything but link-local",
    }[egress.mode]
    return reach + (f"; also {', '.join(egress.allow)}" if egress.allow else "")


def _limits_line(cfg_limits: LimitsConfig) -> str:
    """The limits the spawner applies: berth.yaml's, else the spawner's defaults for this host
    (the hub runs on this same host, so it computes the same defaults)."""
    mem = limits.default_mem_limit() if cfg_limits.memory is None else cfg_limits.memory
    cpu = limits.default_cpu_limit() if cfg_limits.cpu is None else cfg_limits.cpu
    pids = limits.DEFAULT_PIDS_LIMIT if cfg_limits.pids is None else cfg_limits.pids
    return limits.describe(mem, cpu, pids)


def down_command(
    delete_data: Annotated[
        bool, typer.Option(help="Also delete the hub data and every user's files.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Stop the hub and the user servers; volumes (all data) are kept."""
    cfg = load(config)
    client = engine_client.connect()
    if cfg.backend == "swarm":
        if delete_data:
            raise BerthError(
                "--delete-data is not available with backend: swarm: users' volumes are on "
                "the nodes their servers ran on",
                hint="remove them on each node (docker volume ls --filter label=berth.managed)",
            )
        stopped = swarm_up.stop_all(client)
        console.print(f"removed the service and {stopped} user server(s); volumes kept")
        return
    stopped = status.stop_all(client, cfg.network)
    console.print(f"stopped the service and {stopped} user server(s); data volumes kept")
    if delete_data:
        volumes = status.data_volumes(client, cfg)
        if not volumes:
            console.print("no data volumes to delete")
            return
        console.print("[bold red]This deletes:[/] " + ", ".join(v.name for v in volumes))
        if not sys.stdin.isatty():
            raise BerthError("--delete-data needs a typed confirmation on a terminal")
        typed = typer.prompt(f"type {cfg.hub.data_volume!r} to delete all of them")
        if typed != cfg.hub.data_volume:
            raise BerthError("confirmation did not match; nothing deleted")
        failed = []
        for volume in volumes:
            try:
                volume.remove(force=True)
            except APIError as exc:
                failed.append(f"{volume.name}: {exc.explanation}")
        console.print(f"deleted {len(volumes) - len(failed)} volume(s)")
        if failed:
            raise BerthError("some volumes could not be deleted:\n" + "\n".join(failed))


def status_command(config: ConfigOption = None) -> None:
    """Hub health, URL, users and running servers (age, memory, CPU)."""
    cfg = load(config)
    client = engine_client.connect()
    if cfg.backend == "swarm":
        _swarm_status(client, cfg)
        return
    report = status.gather(client, cfg)
    console.print(f"hub: [bold]{report.hub_state}[/]   URL: {report.url}")
    for name, state in report.services:
        console.print(f"  {name}: {state}")
    for line in [*report.certificate, *report.backup]:
        console.print(line, markup=False, highlight=False)
    table = Table("user", "server", "state", "age", "memory", "cpu", title="user servers")
    for row in report.servers:
        table.add_row(row.user, row.server or "(default)", row.state, row.age, row.memory, row.cpu)
    Console().print(table)
    if report.users is not None:
        console.print(f"{len(report.users)} user(s): {', '.join(report.users)}")


def _swarm_status(client: docker.DockerClient, cfg: BerthConfig) -> None:
    report = swarm_status.gather(client, cfg)
    for name, state in report.services:
        console.print(f"  {name}: {state}")
    nodes = Table("node", "role", "state", "availability", "servers", "memory", title="nodes")
    for node in report.nodes:
        nodes.add_row(node.hostname, node.role, node.state, node.availability,
                      str(node.servers), node.memory)  # fmt: skip
    Console().print(nodes)
    table = Table("user", "server", "state", "node", title="user servers")
    for row in report.servers:
        table.add_row(row.user, row.server or "(default)", row.state, row.node)
    Console().print(table)
    if report.users is not None:
        console.print(f"{len(report.users)} user(s): {', '.join(report.users)}")


def logs_command(
    user: Annotated[str | None, typer.Option(help="A user's server instead of the hub.")] = None,
    service: Annotated[
        str,
        typer.Option(
            help="Which of the service's containers: hub, proxy, guard, firewall, acme, backup."
        ),
    ] = "hub",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing.")] = False,
    tail: Annotated[int, typer.Option(help="Lines of history to show.")] = 100,
    config: ConfigOption = None,
) -> None:
    """Print the hub's log (or the proxy's, the guard's, …), or a user's server log."""
    user = None if user is None else username(user)
    client = engine_client.connect()
    container = status.container_for(client, user, load(config).network, service)
    if not follow:
        sys.stdout.write(container.logs(tail=tail).decode(errors="replace"))
        return
    try:
        for chunk in container.logs(stream=True, follow=True, tail=tail):
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
    except KeyboardInterrupt:
        pass
