"""Berth: per-user Jupyter containers on Docker, with JupyterHub."""

from berth.versions import BERTH_VERSION as __version__

__all__ = ["__version__"]
