"""Stand-ins for names that JupyterHub's modules bind at import but use only in the hub.

Installed into base-notebook's site-packages by lazy_hub_imports.py (at build time, see there
and docs/images.md). jupyterhub-singleuser imports jupyterhub.log, .utils, .scopes (through
.services.auth) and .metrics; at their top these import the hub's database layer (sqlalchemy,
alembic, mako, jupyterhub.orm) and its page handlers, which a single-user server never calls
(~39 MiB and ~1 s of every start). In the patched modules those names are bound to the objects
below instead: a module is imported the first time code actually uses it, so the hub, which
does use them, behaves as before, and a single-user server never pays for them.
lazy_server_imports.py does the same for two imports of every server's start that only rare
paths use (requests in JupyterLab's extension listings, rfc3986_validator's regular expressions
in jsonschema's "uri" format checks).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any


class LazyModule:
    """A module imported on first attribute use, which then replaces this stand-in.

    `owner` is the module holding the stand-in under `name`; after the import that name is
    rebound to the real module, so later uses cost nothing extra.
    """

    def __init__(self, owner: str, name: str, target: str) -> None:
        self._owner, self._name, self._target = owner, name, target

    def __getattr__(self, attribute: str) -> Any:
        module = importlib.import_module(self._target)
        owner = sys.modules.get(self._owner)
        if owner is not None and vars(owner).get(self._name) is self:
            setattr(owner, self._name, module)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._target!r} (not imported yet)>"


class _ClassIfLoaded(type):
    """isinstance/issubclass against a class of a module that may never be imported.

    An object can be an instance of that class only if its module was imported: until then
    every check is False, and nothing is imported to answer it.
    """

    _module: str
    _class: str

    def _loaded(cls) -> type | None:
        module = sys.modules.get(cls._module)
        found = getattr(module, cls._class, None) if module is not None else None
        return found if isinstance(found, type) else None

    def __instancecheck__(cls, instance: object) -> bool:
        real = cls._loaded()
        return real is not None and isinstance(instance, real)

    def __subclasscheck__(cls, subclass: type) -> bool:
        real = cls._loaded()
        return real is not None and issubclass(subclass, real)


def class_if_loaded(module: str, name: str) -> type:
    """A stand-in for `module.name` in isinstance/issubclass checks (see _ClassIfLoaded)."""
    return _ClassIfLoaded(name, (), {"_module": module, "_class": name})


def lazy_function(module: str, name: str) -> Callable[..., Any]:
    """A stand-in for `from module import name` of a function: the module is imported on the
    first call. Raises ImportError now, as that import would, when the module is not installed
    (callers guard it with `suppress(ImportError)`); finding it reads no module code."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"No module named {module!r}", name=module)
    found: list[Callable[..., Any]] = []

    def call(*args: Any, **kwargs: Any) -> Any:
        if not found:
            found.append(getattr(importlib.import_module(module), name))
        return found[0](*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    call.__module__ = module
    return call


class LazyInstance:
    """A stand-in for `factory(*args, **kwargs)`, made on the first attribute use and used for
    every attribute from then on (attribute use only: no operators or `with` on it)."""

    def __init__(self, factory: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        object.__setattr__(self, "_berth_recipe", (factory, args, kwargs))
        object.__setattr__(self, "_berth_made", [])

    def _berth_instance(self) -> Any:
        made = object.__getattribute__(self, "_berth_made")
        if not made:
            factory, args, kwargs = object.__getattribute__(self, "_berth_recipe")
            made.append(factory(*args, **kwargs))
        return made[0]

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._berth_instance(), attribute)

    def __setattr__(self, attribute: str, value: Any) -> None:
        setattr(self._berth_instance(), attribute, value)

    def __repr__(self) -> str:
        made = object.__getattribute__(self, "_berth_made")
        factory = object.__getattribute__(self, "_berth_recipe")[0]
        return repr(made[0]) if made else f"<{factory.__qualname__} made on first use>"
