"""`berth run`: one secure notebook container for one person (token or HTTPS, loopback only)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import docker
import typer
from docker.models.containers import Container
from rich.console import Console
from rich.table import Table

from berth import engine_client
from berth.cli.options import CaBundleOption
from berth.cli.output import console, stack_builder
from berth.config.fields import check_image
from berth.errors import BerthError
from berth.images import catalog, provision
from berth.labels import LABEL_RUN
from berth.run import runner
from berth.run.spec import (
    RunSpec,
    choose_identity,
    validate_memory,
    validate_name,
    validate_port,
)

DEFAULT_IMAGE = catalog.DEFAULT_NOTEBOOK_IMAGE.tag("latest")


def _image(text: str) -> str:
    try:
        return check_image(text)
    except ValueError as exc:
        raise BerthError(f"invalid image: {exc}") from None


def _print_list() -> None:
    rows = runner.list_running(engine_client.connect())
    if not rows:
        console.print("no notebooks started by `berth run` are running")
        return
    out = Console()
    if not out.is_terminal:  # scripts get one tab-separated line per notebook, nothing cut
        for row in rows:
            print("\t".join((row.name, row.image, row.status, row.url, row.mount)))
        return
    table = Table("name", "image", "status", "mounted")
    table.add_column("url", overflow="fold")
    for row in rows:
        table.add_row(row.name, row.image, row.status, row.mount, row.url)
    out.print(table)


def run_command(
    image: Annotated[str, typer.Argument(help="Notebook image.")] = DEFAULT_IMAGE,
    port: Annotated[int, typer.Option(help="Host port to publish the server on.")] = 8888,
    https: Annotated[bool, typer.Option(help="Serve HTTPS with a self-signed cert.")] = False,
    public: Annotated[
        bool, typer.Option(help="Listen on all interfaces instead of 127.0.0.1.")
    ] = False,
    mount: Annotated[
        Path | None,
        typer.Option(help="Directory mounted at /home/jovyan/work. Default: the current one."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Container name.")] = None,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Start and return.")] = False,
    memory: Annotated[str | None, typer.Option(help="Memory limit, e.g. 2g.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="Show running notebooks.")] = False,
    stop: Annotated[str | None, typer.Option(help="Stop and remove the named notebook.")] = None,
    ca_bundle: CaBundleOption = None,
) -> None:
    """Run one secure notebook server for one person (the current directory is mounted)."""
    if list_:
        _print_list()
        return
    if stop:
        _stop(validate_name(stop))
        return
    # Every argument is checked before the engine is contacted (or an image pulled).
    spec = _checked_spec(image, port, https, public, mount, name, memory)
    client = engine_client.connect()
    provision.ensure_image(client, spec.image, stack_builder(client, ca_bundle), console.print)
    if not detach:
        _interrupt_on_signals()
    container, url = _start_until_ready(client, spec)
    console.print(f"[bold green]Jupyter is ready:[/] {url}", highlight=False, soft_wrap=True)
    console.print(f"files in {spec.mount} appear in work/ (as uid {spec.identity.uid})")
    if detach:
        console.print(f"stop it with: berth run --stop {spec.name}")
        print(url)
        return
    _follow_then_remove(container, spec)


def _checked_spec(
    image: str,
    port: int,
    https: bool,
    public: bool,
    mount: Path | None,
    name: str | None,
    memory: str | None,
) -> RunSpec:
    """The container to run, from the checked arguments; notes and warnings are printed."""
    validate_port(port)
    image = _image(image)
    name = validate_name(f"berth-run-{port}" if name is None else name)
    memory_bytes = validate_memory(memory) if memory is not None else None
    directory = (mount or Path.cwd()).resolve()
    if not directory.is_dir():
        raise BerthError(f"--mount {directory} is not a directory")
    info = directory.stat()
    identity = choose_identity(info.st_uid, info.st_gid, os.getuid())
    if identity.note:
        console.print(f"[yellow]note:[/] {identity.note}")
    if public and not https:
        console.print(
            "[yellow]warning:[/] --public without --https sends the token in clear text to "
            "anyone on the network path; add --https"
        )
    return RunSpec(
        image=image,
        name=name,
        port=port,
        mount=directory,
        identity=identity,
        https=https,
        public=public,
        memory=memory_bytes,
    )


def _start_until_ready(client: docker.DockerClient, spec: RunSpec) -> tuple[Container, str]:
    """Start the container and wait for its server; a server that never gets ready (or an
    interrupt meanwhile) leaves no container behind."""
    container = runner.start(client, spec)
    try:
        with console.status("waiting for the notebook server …"):
            runner.wait_healthy(container)
        return container, runner.url_of(container)
    except BaseException:
        runner.remove(container)
        raise


def _follow_then_remove(container: Container, spec: RunSpec) -> None:
    """Show the server's log until it exits or is interrupted; then remove the container."""
    console.print("[dim]following the server log; Ctrl-C stops and removes the container[/]")
    try:
        runner.follow_logs(container, sys.stderr.buffer.write)
        container.reload()
        code = container.attrs["State"].get("ExitCode", 0)
        console.print(f"the notebook server exited with status {code}")
        runner.remove(container)
    except KeyboardInterrupt:
        console.print("\nstopping …")
        runner.remove(container)
        console.print(f"removed {spec.name}")


def _interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM both end in the clean-up, even where a parent ignored SIGINT."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def _stop(name: str) -> None:
    client = engine_client.connect()
    matches = client.containers.list(all=True, filters={"label": LABEL_RUN, "name": name})
    container = next((item for item in matches if item.name == name), None)
    if container is None:
        raise BerthError(f"no notebook started by `berth run` is named {name!r}")
    runner.remove(container)
    console.print(f"removed {name}")
