"""Options shared by the deployment commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from berth.config.load import load_config
from berth.config.schema import BerthConfig

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


CaBundleOption = Annotated[
    Path | None,
    typer.Option(
        "--ca-bundle",
        envvar="BERTH_CA_BUNDLE",
        help="PEM file of extra CAs that every download in the build (and in user containers) "
        "trusts; needed behind a TLS-inspecting proxy. Env: BERTH_CA_BUNDLE.",
    ),
]
