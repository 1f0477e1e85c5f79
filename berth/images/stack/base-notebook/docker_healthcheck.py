#!/usr/bin/python3 -IS
"""Docker HEALTHCHECK of Berth's notebook images: exit 0 when the Jupyter server answers.

Jupyter servers describe themselves in jpserver-<pid>.json in their runtime directory (URL with
scheme, port and base_url). We look for such files where the server's user keeps them, keep
those whose process is alive, and request <url>api, which answers 200 without a token.

Docker runs this every few seconds with `docker exec`: as the image's USER, or root after
`--user root`, with the container's environment, so HOME may not be the server user's home (a
renamed NB_USER, or the temporary home start.sh picks for an arbitrary uid). Hence the search over
the usual homes. Standard library only, run by Debian's python in isolated mode without site
(-I -S): importing jupyter_core or requests would cost more than the check itself, and the user's
PYTHONPATH, venv or site-packages cannot break it.

Security: when the container started as root, so does this check. It must then run nothing the
notebook user can write: the image keeps this file root-owned and read-only outside the
user-writable /etc/jupyter, runs it with the root-owned /usr/bin/python3 (never the user-owned
venv's), and the first thing it does as uid 0 is to drop to NB_UID:NB_GID (when the container
kept CAP_SETUID/CAP_SETGID; otherwise it goes on as root, still reading only root-owned code).
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

RUNTIME = Path(".local/share/jupyter/runtime")
TIMEOUT = 0.9  # seconds per request; the image's HEALTHCHECK allows 2 in all


def _home_of(name: str | None = None, uid: int | None = None) -> list[str]:
    try:
        entry = pwd.getpwnam(name) if name is not None else pwd.getpwuid(uid)  # type: ignore[arg-type]
    except (KeyError, TypeError, OverflowError):
        return []
    return [entry.pw_dir]


def runtime_dirs(
    env: Mapping[str, str], home_globs: Iterable[str] = ("/home/*", "/tmp/*")
) -> list[Path]:
    """Directories that may hold the server's jpserver-*.json, most likely first, no duplicates.

    Mirrors jupyter_core's jupyter_runtime_dir() (JUPYTER_RUNTIME_DIR, JUPYTER_DATA_DIR,
    XDG_DATA_HOME, ~/.local/share) for every home the server may have: HOME, NB_USER's, NB_UID's,
    ours, then any under /home (a renamed user) or /tmp (start.sh's temporary homes).
    """
    dirs: list[Path] = []
    if env.get("JUPYTER_RUNTIME_DIR"):
        dirs.append(Path(env["JUPYTER_RUNTIME_DIR"]))
    if env.get("JUPYTER_DATA_DIR"):
        dirs.append(Path(env["JUPYTER_DATA_DIR"], "runtime"))
    if env.get("XDG_DATA_HOME"):
        dirs.append(Path(env["XDG_DATA_HOME"], "jupyter", "runtime"))
    homes = [env.get("HOME", "")]
    if env.get("NB_USER"):
        homes += [f"/home/{env['NB_USER']}", *_home_of(name=env["NB_USER"])]
    if env.get("NB_UID", "").isdigit():
        homes += _home_of(uid=int(env["NB_UID"]))
    homes += _home_of(uid=os.getuid())
    for pattern in home_globs:
        homes += sorted(glob.glob(pattern))
    homes += ["/home/root", "/root"]
    ordered = dirs + [Path(h) / RUNTIME for h in homes if h and os.path.isabs(h)]
    unique: list[Path] = []
    for path in ordered:
        if path not in unique:
            unique.append(path)
    return unique


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return True  # no usable pid: let the request decide
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def find_server(dirs: Iterable[Path]) -> dict | None:
    """The newest server description whose process still runs (stale files survive restarts)."""
    found: list[tuple[float, dict]] = []
    for directory in dirs:
        try:
            candidates = list(directory.glob("jpserver-*.json"))
        except OSError:
            continue
        for path in candidates:
            try:
                info = json.loads(path.read_text())
                mtime = path.stat().st_mtime
            except (OSError, ValueError):
                continue
            if not (isinstance(info, dict) and isinstance(info.get("url"), str)):
                continue
            if _alive(info.get("pid")):
                found.append((mtime, info))
    return max(found, key=lambda item: item[0])[1] if found else None


def api_urls(info: Mapping) -> list[str]:
    """<url>api, plus the same on 127.0.0.1 when the server listens on every interface (its URL
    then names the container's hostname, which a restricted network may not resolve)."""
    url = info["url"]
    if not url.endswith("/"):
        url += "/"
    urls = [url + "api"]
    parts = urllib.parse.urlsplit(url)
    if parts.hostname != "127.0.0.1":
        port = f":{parts.port}" if parts.port else ""
        local = urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1{port}")) + "api"
        if local not in urls:
            urls.append(local)
    return urls


def check(url: str, timeout: float = TIMEOUT) -> tuple[bool, str]:
    # Self-signed certificates (GEN_CERT) are expected; and never go through a proxy.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status == 200, f"{url}: HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return False, f"{url}: HTTP {error.code}"
    except (OSError, ValueError) as error:
        return False, f"{url}: {getattr(error, 'reason', error)}"


def unprivileged_ids(env: Mapping[str, str], uid: int) -> tuple[int, int] | None:
    """(uid, gid) to drop to when running as root: NB_UID:NB_GID (default 1000:100); None when
    not root, or when NB_UID asks for root itself."""
    if uid != 0:
        return None
    nb_uid, nb_gid = env.get("NB_UID", "1000"), env.get("NB_GID", "100")
    if not (nb_uid.isdigit() and nb_gid.isdigit()) or int(nb_uid) == 0:
        return None
    return int(nb_uid), int(nb_gid)


def drop_privileges(env: Mapping[str, str]) -> None:
    ids = unprivileged_ids(env, os.getuid())
    if ids is None:
        return
    try:
        os.setgroups([])
        os.setgid(ids[1])
        os.setuid(ids[0])
    except PermissionError:
        pass  # no CAP_SETUID/SETGID in this container: root, but only root-owned code runs


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    info = find_server(runtime_dirs(env))
    if info is None:
        print("unhealthy: no running Jupyter server found (no live jpserver-*.json)")
        return 1
    if not info["url"].startswith(("http://", "https://")):
        # Listening on a UNIX socket only (ServerApp.sock): nothing to reach over TCP.
        print(f"healthy: server on {info['url']} (not HTTP, not checked)")
        return 0
    messages = []
    for url in api_urls(info):
        ok, message = check(url)
        if ok:
            print(f"healthy: {message}")
            return 0
        messages.append(message)
    print("unhealthy: " + "; ".join(messages))
    return 1


if __name__ == "__main__":
    drop_privileges(os.environ)  # before reading anything the user wrote
    sys.exit(main())
