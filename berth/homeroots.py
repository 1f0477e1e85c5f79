"""Which host directory may hold the system users' homes that containers bind-mount.

With ``backend: system-users`` each user's server gets their host home directory, a direct
child of one *homes root* (``/home`` usually). The engine guard allows exactly those binds, so
the root itself must never be a directory whose children are the system's own: ``/`` (its
children are ``/etc``, ``/var``, …), ``/etc``, ``/var`` (``/var/run`` holds the Docker socket),
and so on. Used by berth.yaml's schema and by the guard's command line (both refuse the same).
"""

from __future__ import annotations

import posixpath

# Directories that are, or hold, the system's own files (and the engine's socket and data).
# A homes root may be none of these nor lie inside one; `/srv/homes` or `/data/home` are fine.
SYSTEM_DIRS = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
    "/run", "/sbin", "/sys", "/tmp", "/usr", "/var/lib", "/var/run", "/var/log", "/var/cache",
    "/var/spool", "/var/tmp",
)  # fmt: skip
# Directories that are parents of system directories: a root here would let their children
# (e.g. /var/lib, /var/run) be mounted as if they were homes.
SYSTEM_PARENTS = ("/", "/var")


def home_root_problem(path: str) -> str | None:
    """Why ``path`` cannot be the homes root, or None. It must be absolute, written plainly
    (no ``.``/``..``/empty segments, no trailing ``/``), and not a system directory."""
    if not isinstance(path, str) or not path.startswith("/"):
        return f"{path!r} must be an absolute path"
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        return f"{path!r} contains a control character"
    segments = path.split("/")[1:]
    if path != "/" and any(seg in {"", ".", ".."} for seg in segments):
        return f"{path!r} must be written plainly (no '.', '..', '//' or trailing '/')"
    clean = posixpath.normpath(path)
    if clean in SYSTEM_PARENTS:
        return f"{path!r} holds the system's own directories, not only homes"
    for system in SYSTEM_DIRS:
        if clean == system or clean.startswith(system + "/"):
            return f"{path!r} is (or lies inside) the system directory {system}"
    return None


def home_child_problem(path: str, root: str) -> str | None:
    """Why ``path`` is not a home directly inside ``root`` (``<root>/<name>``), or None."""
    if not path.startswith(root + "/"):
        return f"{path!r} is not inside {root}"
    name = path[len(root) + 1 :]
    if not name or "/" in name:
        return f"{path!r} is not a directory directly inside {root}"
    if name in {".", ".."}:
        return f"{path!r} names {name!r}, not a home"
    if "\0" in name or ":" in name:
        return f"{path!r} has a character a home's name cannot have"
    return None
