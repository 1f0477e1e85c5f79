# Berth base-notebook: the package's names, with parsers built on first use (see syntax_helpers).
from . import syntax_helpers
from .syntax_helpers import *  # noqa: F403 (the published package re-exports everything too)


def __getattr__(name):
    return getattr(syntax_helpers, name)


def __dir__():
    return sorted(set(globals()) | set(dir(syntax_helpers)))
