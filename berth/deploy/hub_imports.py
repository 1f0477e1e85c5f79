"""Modules the hub process never needs, refused so that the library importing them takes its
own fallback (installed by berth.deploy.hubapp before JupyterHub is imported).

- ``mako.ext.pygmentplugin``: JupyterHub imports alembic (database migrations), which imports
  mako's exceptions module, which imports pygments (42 modules) to colour the source of
  template errors on mako's HTML error pages. The hub renders no mako page, and mako catches the
  ImportError and escapes instead of colouring (its own code path for hosts without pygments).
  ~4.5 MiB of the idle hub (docs/deploy.md, "Hub memory").

Only the hub process is affected: ``jupyterhub`` run by hand, the CLI and user servers import
as before.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from types import ModuleType

NOT_IN_THE_HUB = frozenset({"mako.ext.pygmentplugin"})


class RefuseUnused(importlib.abc.MetaPathFinder):
    """A finder that makes importing one of ``NOT_IN_THE_HUB`` fail as a missing module."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if fullname in NOT_IN_THE_HUB:
            raise ModuleNotFoundError(
                f"{fullname} is not imported in Berth's hub (berth.deploy.hub_imports)",
                name=fullname,
            )


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, RefuseUnused) for finder in sys.meta_path):
        sys.meta_path.insert(0, RefuseUnused())
