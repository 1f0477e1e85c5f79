"""`berth images …`: build the notebook image stack and list what is built."""

from __future__ import annotations

import os
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
from berth.images.catalog import STACK, build_order

app = typer.Typer(help="Build and list Berth's notebook images.", no_args_is_help=True)


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
        )
    print_built(built)


@app.command("list")
def list_command() -> None:
    """Show the stack's images that are built, with their sizes."""
    client = engine_client.connect()
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
