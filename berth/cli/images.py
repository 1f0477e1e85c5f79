"""`berth images …`: build the notebook image stack and list what is built."""

from __future__ import annotations

import os
from dataclasses import dataclass
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
from berth.images.stack import REPOSITORY_PREFIX, STACK, build_order, check_prefix

app = typer.Typer(help="Build and list Berth's notebook images.", no_args_is_help=True)

PrefixOption = Annotated[
    str,
    typer.Option(
        "--prefix",
        help="Namespace of the tags: --prefix berth-alice builds berth-alice/base-notebook:… "
        "(parents too) to try a change without replacing the berth/* images others run.",
    ),
]

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
    prefix: str = REPOSITORY_PREFIX,
) -> None:
    """Build `names` and their parents (used by `berth images build`, `run` and `up`)."""
    client = client or engine.connect()
    base = osbase.resolve_base(
        client, base_image, base_source, say=lambda text: console.print(f"[dim]{text}[/]")
    )
    options = BuildOptions(
        names=names, base_image=base, ca_bundle=ca_bundle, no_cache=no_cache, prefix=prefix
    )
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
    prefix: PrefixOption = REPOSITORY_PREFIX,
) -> None:
    """Build notebook images with their parents (foundation → base → minimal → scipy → …)."""
    # Checked before the engine is contacted and the base image resolved (which may pull or
    # bootstrap Debian for minutes): an unknown name is refused at once.
    build_order(names or [])
    check_prefix(prefix)
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
        prefix=prefix,
    )


@dataclass(frozen=True)
class Built:
    """One image of the engine that carries a stack tag (what `berth images list` shows)."""

    tags: tuple[str, ...]
    size: int  # bytes, uncompressed, parents included
    created: str


Row = tuple[str, ...]  # one line of `berth images list`


def list_rows(found: dict[str, list[Built]], prefix: str = REPOSITORY_PREFIX) -> list[Row]:
    """(image, built on, tags, size, adds, created) per built image, in stack order (pure).

    Tags are shown without the repository (`0.1.0, latest`); "adds" is what the image costs on
    top of its parent's current `latest`: its own layers.
    """
    latest_size = {
        name: item.size
        for name, items in found.items()
        for item in items
        if f"{prefix}/{name}:latest" in item.tags
    }
    rows: list[Row] = []
    for image in STACK:
        parent = image.parent or "os base"
        items = found.get(image.name, [])
        if not items:
            rows.append((image.name, parent, "not built", "", "", ""))
        for item in items:
            base = latest_size.get(image.parent or "")
            adds = f"+{(item.size - base) / 1e6:.0f} MB" if base is not None else ""
            repository = f"{prefix}/{image.name}:"
            tags = ", ".join(t[len(repository) :] for t in item.tags if t.startswith(repository))
            size = f"{item.size / 1e6:.0f} MB"
            created = item.created[:16].replace("T", " ")
            rows.append((image.name, parent, tags, size, adds, created))
    return rows


@app.command("list")
def list_command(prefix: PrefixOption = REPOSITORY_PREFIX) -> None:
    """Show the stack's images that are built, with their sizes and what each adds."""
    check_prefix(prefix)
    client = engine.connect()
    found = {
        image.name: [
            Built(tuple(item.tags), item.attrs.get("Size", 0), item.attrs.get("Created", ""))
            for item in client.images.list(name=f"{prefix}/{image.name}")
        ]
        for image in STACK
    }
    table = Table("image", "built on", "tags", "size", "adds", "created")
    for row in list_rows(found, prefix):
        table.add_row(*(f"[dim]{cell}[/]" if cell == "not built" else cell for cell in row))
    out = Console()
    # Piped (scripts, CI logs) rich assumes 80 columns and would fold every cell in two.
    Console(width=None if out.is_terminal else 120).print(table)
