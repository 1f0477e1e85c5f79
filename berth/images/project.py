"""The pyproject.toml of an installed Berth, for building the hub image without a checkout.

The hub image installs Berth from the source that builds it (berth.images.builder.source_files):
from a checkout, its own pyproject.toml; from a wheel (``pip install berth-jupyter``), there is
none, so one is written from the installed distribution's metadata: its name, version and entry
points (the ``berth`` command, the spawners and authenticators JupyterHub looks up), and the
package data of the wheel. The hub image installs it with ``--no-deps`` (its requirements.txt
pins the dependencies), so none are listed.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "berth-jupyter"
PACKAGE_DATA = ["images/stack/**/*", "py.typed", "deploy/*.js"]  # as in Berth's pyproject.toml


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def installed_pyproject(distribution: str = DISTRIBUTION) -> str:
    dist = metadata.distribution(distribution)
    groups: dict[str, list[str]] = {}
    for entry in sorted(dist.entry_points, key=lambda e: (e.group, e.name)):
        groups.setdefault(entry.group, []).append(
            f"{_toml_string(entry.name)} = {_toml_string(entry.value)}"
        )
    lines = [
        "# Written by berth.images.project from the installed distribution's metadata.",
        "[build-system]",
        'requires = ["setuptools>=69"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {_toml_string(dist.metadata['Name'])}",
        f"version = {_toml_string(dist.version)}",
        'requires-python = ">=3.11"',
        "",
    ]
    for group, entries in groups.items():
        header = "[project.scripts]" if group == "console_scripts" else (
            f"[project.entry-points.{_toml_string(group)}]"
        )  # fmt: skip
        lines += [header, *entries, ""]
    lines += [
        "[tool.setuptools.packages.find]",
        'include = ["berth*"]',
        "",
        "[tool.setuptools.package-data]",
        f"berth = {json.dumps(PACKAGE_DATA)}",
        "",
    ]
    return "\n".join(lines)


@functools.cache
def _private_directory() -> Path:
    """A directory only this process's user can write, made once per process (mode 700, an
    unpredictable name) and removed at exit. A fixed name in the shared temporary directory
    could be made first by another local user, who could then swap the file between its write
    and the hub image's build: a pyproject.toml of theirs, whose build backend the image build
    runs."""
    directory = Path(tempfile.mkdtemp(prefix="berth-project-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


def written_pyproject(distribution: str = DISTRIBUTION) -> Path:
    """installed_pyproject() in a file (the build context is made from files)."""
    text = installed_pyproject(distribution)
    path = _private_directory() / "pyproject.toml"
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path
