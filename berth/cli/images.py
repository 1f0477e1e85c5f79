"""`berth images …`: build the notebook image stack and list what is built."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import docker
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from berth import engine
from berth.cli.output import console
from berth.config.fields import check_image
from berth.errors import BerthError
from berth.images import osbase
from berth.images.builder import BuildEvent, BuildOptions, build_stack
from berth.images.stack import STACK, build_order

app = typer.Typer(help="Build and list Berth's notebook images.", no_args_is_help=True)

CaBundleOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-bundle",
        envvar="BERTH_CA_BUNDLE",
        help="PEM file of extra CAs that every download in the build (and in user containers) "
        "trusts; needed behind a TLS-inspecting proxy. Env: BERTH_CA_BUNDLE.",
    ),
]


class BuildReporter:
    """Build progress: a bar per image on a terminal, one line per step elsewhere (CI logs).

    With verbose, the build's own output is shown too.
    """

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __call__(self, event: BuildEvent) -> None:
        text = " ".join(event.text.split())  # fold the Dockerfile's line continuations
        text = text if len(text) <= 70 else text[:69] + "…"
        if event.kind == "start" and console.is_terminal:
            self.bar = Progress(
                TextColumn("[bold]{task.fields[image]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("", image=event.image, total=None)
        elif event.kind == "start":
            console.print(f"[bold]building {event.image}[/]")
        elif event.kind == "step" and self.bar is not None and self.task is not None:
            self.bar.update(
                self.task, completed=event.step - 1, total=event.steps, description=escape(text)
            )
        elif event.kind == "step":
            console.print(
                f"  [cyan]{event.image}[/] {event.step}/{event.steps} {escape(text)}",
                highlight=False,
            )
        elif event.kind == "output" and self.verbose:
            console.print(f"    {event.text}", highlight=False, markup=False)
        elif event.kind == "done":
            if self.bar is not None:
                self.bar.stop()
                self.bar = None
            console.print(f"  [green]✓ {event.image}[/] built in {event.text}")


def build_images(
    names: list[str],
    ca_bundle: Path | None = None,
    base_image: str = osbase.DEFAULT_BASE_IMAGE,
    base_source: osbase.BaseSource = osbase.BaseSource.AUTO,
    no_cache: bool = False,
    verbose: bool = False,
    client: docker.DockerClient | None = None,
) -> None:
    """Build `names` and their parents (used by `berth images build`, `run` and `up`)."""
    client = client or engine.connect()
    base = osbase.resolve_base(
        client, base_image, base_source, say=lambda text: console.print(f"[dim]{text}[/]")
    )
    options = BuildOptions(names=names, base_image=base, ca_bundle=ca_bundle, no_cache=no_cache)
    reporter = BuildReporter(verbose)
    try:
        built = build_stack(client, options, reporter)
    finally:
        if reporter.bar is not None:  # a failed build must not leave the cursor hidden
            reporter.bar.stop()
    for image in built:
        console.print(f"[green]{image.name}[/]: {', '.join(image.tags)}")


@app.command("build")
def build_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Images to build (with their parents). Default: the whole stack."),
    ] = None,
    ca_bundle: CaBundleOption = None,
    base_image: Annotated[
        str, typer.Option(help="Registry image the foundation starts from.")
    ] = osbase.DEFAULT_BASE_IMAGE,
    base_source: Annotated[
        osbase.BaseSource,
        typer.Option(
            help="auto: the base image if present or pullable, else Debian bootstrapped with "
            "mmdebstrap; registry: never bootstrap; bootstrap: always bootstrap."
        ),
    ] = osbase.BaseSource.AUTO,
    no_cache: Annotated[bool, typer.Option(help="Rebuild every layer.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show build output.")] = False,
) -> None:
    """Build the notebook images (foundation → base → minimal → scipy)."""
    # Checked before the engine is contacted and the base image resolved (which may pull or
    # bootstrap Debian for minutes): an unknown name is refused at once.
    build_order(names or [])
    try:
        check_image(base_image)
    except ValueError as exc:
        raise BerthError(f"--base-image: {exc}") from None
    build_images(
        names or [],
        ca_bundle,
        base_image,
        base_source,
        no_cache,
        verbose or bool(os.environ.get("BERTH_BUILD_VERBOSE")),
    )


@app.command("list")
def list_command() -> None:
    """Show the stack's images that are built, with their sizes."""
    client = engine.connect()
    table = Table("image", "tags", "size", "created")
    for image in STACK:
        found = client.images.list(name=image.repository)
        if not found:
            table.add_row(image.name, "[dim]not built[/]", "", "")
            continue
        for item in found:
            size = item.attrs.get("Size", 0) / 1e6
            table.add_row(
                image.name,
                ", ".join(item.tags),
                f"{size:.0f} MB",
                item.attrs.get("Created", "")[:19],
            )
    Console().print(table)
