"""`berth images …`: build the notebook image stack and list what is built."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from berth import engine_client
from berth.cli.options import CaBundleOption
from berth.cli.output import build_progress, print_built, say_dim
from berth.config.fields import check_image
from berth.errors import BerthError
from berth.images import osbase, provision
from berth.images.builder import BuildOptions
from berth.images.catalog import REPOSITORY_PREFIX, STACK, build_order, check_prefix

app = typer.Typer(help="Build and list Berth's notebook images.", no_args_is_help=True)

PrefixOption = Annotated[
    str,
    typer.Option(
        "--prefix",
        help="Namespace of the tags: --prefix berth-alice builds berth-alice/base-notebook:… "
        "(parents too) to try a change without replacing the berth/* images others run.",
    ),
]


@app.command("build")
def build_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Images to build (with their parents). Default: the stack without the Spark "
            "and TensorFlow images (--all adds them)."
        ),
    ] = None,
    build_all: Annotated[
        bool, typer.Option("--all", help="The whole stack, Spark and TensorFlow images too.")
    ] = False,
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
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Images built side by side, each once its parent is built (the hub and "
            "base-notebook both need only the foundation); 1 builds one after the other.",
        ),
    ] = BuildOptions.jobs,
) -> None:
    """Build notebook images with their parents (foundation → base → minimal → scipy → …)."""
    # Checked before the engine is contacted and the base image resolved (which may pull or
    # bootstrap Debian for minutes): an unknown name is refused at once.
    if build_all and names:
        raise BerthError("give image names or --all, not both")
    if build_all:
        names = [image.name for image in build_order(everything=True)]
    build_order(names or [])
    check_prefix(prefix)
    try:
        check_image(base_image)
    except ValueError as exc:
        raise BerthError(f"--base-image: {exc}") from None
    verbose = verbose or bool(os.environ.get("BERTH_BUILD_VERBOSE"))
    with build_progress(verbose) as report:
        built = provision.build(
            engine_client.connect(),
            names or [],
            ca_bundle=ca_bundle,
            base_image=base_image,
            base_source=base_source,
            no_cache=no_cache,
            report=report,
            say=say_dim,
            prefix=prefix,
            jobs=jobs,
        )
    print_built(built)


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
    client = engine_client.connect()
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
