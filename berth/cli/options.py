"""Options and arguments shared by the deployment commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from berth.config.fields import check_account_name, check_username
from berth.config.load import load_config
from berth.config.schema import BerthConfig
from berth.errors import BerthError

DEFAULT_CONFIG = Path("berth.yaml")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        envvar="BERTH_CONFIG",
        help="berth.yaml to use (default: ./berth.yaml if present, else built-in defaults). "
        "Env: BERTH_CONFIG.",
    ),
]


def load(path: Path | None) -> BerthConfig:
    """The given file (which must exist), or ./berth.yaml, or the defaults."""
    if path is not None:
        return load_config(path)
    return load_config(DEFAULT_CONFIG, missing_ok=True)


def username(value: str) -> str:
    """A user name from the command line, checked and lowercased as the hub keeps it. Call it
    before connecting to the engine, so that a typo is refused as such even when the engine is
    down."""
    try:
        return check_username(value)
    except ValueError as exc:
        raise BerthError(f"invalid user name {value!r}: {exc}") from None


def new_username(value: str) -> str:
    """A user name to make an account for: :func:`username`, and not one of the names of
    Berth's own parts (a user `hub` would get a server container called `berth-hub`)."""
    try:
        return check_account_name(value)
    except ValueError as exc:
        raise BerthError(f"invalid user name {value!r}: {exc}") from None


CaBundleOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-bundle",
        envvar="BERTH_CA_BUNDLE",
        help="PEM file of extra CAs that every download in the build (and in user containers) "
        "trusts; needed behind a TLS-inspecting proxy. Env: BERTH_CA_BUNDLE.",
    ),
]
