"""Gzip copies of the notebook servers' static files, written once at image build.

`write` (run by base-notebook's Dockerfile right after slim_venv.py, in the same layer, so the
copies are made from the final files): beside every compressible static file of JupyterLab,
Notebook 7 and the image's prebuilt JupyterLab extensions (STATIC_DIRS) it writes `<file>.gz`
(gzip level 9, no name or time in the header, so a rebuild gives the same bytes), decompresses
it again and compares it with the file, and gives it the file's modification time
(berth_static_gzip.py serves a copy only while the times match). It installs
berth_static_gzip.py, the handler that serves them, with its byte-code.

`check` (run by the Dockerfile once /etc/jupyter/jupyter_server_config.py is in place): starts
`jupyter lab` on 127.0.0.1 with the image's configuration (build_lab_server.py) and fails the
build unless, for the largest script of each directory, a browser accepting gzip gets the
copy's exact bytes with `Content-Encoding: gzip`, the right type and `Vary: Accept-Encoding`,
and a client that does not gets the plain file. So a jupyter_server, jupyterlab_server or
tornado upgrade that stops the hook from applying fails the image build instead of silently
compressing on every request again.

Standard library only. Every wait is bounded.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

VENV = Path(sys.prefix)
SITE = Path(sysconfig.get_paths()["purelib"])
HERE = Path(__file__).resolve().parent
# What berth_static_gzip's handler serves from, by URL prefix: the server's static handler
# (JupyterLab's application directory, Notebook 7's package) and JupyterLab's route of the
# prebuilt extensions installed in the image (their remoteEntry and chunk files; extensions a
# user installs later land in other directories of the same search path, without copies).
STATIC_DIRS = {
    "/static/lab/": VENV / "share" / "jupyter" / "lab" / "static",
    "/static/notebook/": SITE / "notebook" / "static",
    "/lab/extensions/": VENV / "share" / "jupyter" / "labextensions",
}
COMPRESSIBLE = {".js", ".mjs", ".css", ".json", ".svg", ".html", ".txt", ".xml", ".wasm", ".map"}
# tornado's own gzip leaves responses under 1 KiB alone; below that the header outweighs the gain.
MIN_SIZE = 1024
# A copy must save at least a tenth, or it is not worth a second file.
MAX_RATIO = 0.9
SUFFIX = ".gz"


def say(text: str) -> None:
    print(f"precompress_static: {text}", flush=True)


def gzip_copy(path: Path) -> bytes | None:
    """The bytes of `path`'s gzip copy, or None if it would not save enough."""
    data = path.read_bytes()
    if len(data) < MIN_SIZE:
        return None
    packed = gzip.compress(data, compresslevel=9, mtime=0)
    if len(packed) > MAX_RATIO * len(data):
        return None
    if gzip.decompress(packed) != data:  # never ship a copy that is not the file
        raise SystemExit(f"precompress_static: the gzip copy of {path} does not decompress to it")
    return packed


def write_copies(root: Path) -> tuple[int, int, int]:
    """Writes `<file>.gz` beside each compressible file under `root` (replacing any older
    copy); files that are hard links of one another get one copy, hard-linked likewise.
    Returns (copies written, bytes of the files, bytes of their copies)."""
    made: dict[tuple[int, int], Path] = {}
    count = plain = packed_total = 0
    for path in sorted(root.rglob("*")):
        if path.suffix not in COMPRESSIBLE or path.is_symlink() or not path.is_file():
            continue
        copy = path.with_name(path.name + SUFFIX)
        info = path.stat()
        if (info.st_dev, info.st_ino) in made:
            copy.unlink(missing_ok=True)
            os.link(made[(info.st_dev, info.st_ino)], copy)
            continue
        packed = gzip_copy(path)
        if packed is None:
            copy.unlink(missing_ok=True)
            continue
        copy.unlink(missing_ok=True)  # never write through a link someone left there
        copy.write_bytes(packed)
        os.utime(copy, ns=(info.st_atime_ns, info.st_mtime_ns))
        made[(info.st_dev, info.st_ino)] = copy
        count, plain, packed_total = count + 1, plain + info.st_size, packed_total + len(packed)
    return count, plain, packed_total


def write() -> None:
    for prefix, root in STATIC_DIRS.items():
        if not root.is_dir():
            raise SystemExit(f"precompress_static: {root} (served at {prefix}) is missing")
        count, plain, packed = write_copies(root)
        say(f"{prefix}: {count} gzip copies, {plain / 2**20:.1f} MiB -> {packed / 2**20:.1f} MiB")
    module = SITE / "berth_static_gzip.py"
    shutil.copyfile(HERE / "berth_static_gzip.py", module)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(module)], check=True)


def fetch(url: str, token: str, gzip_ok: bool) -> tuple[int, dict[str, str], bytes]:
    from build_lab_server import get  # beside this file in the build, as for check()

    return get(url, token, {"Accept-Encoding": "gzip, deflate, br"} if gzip_ok else {})


def check_served(base: str, token: str, prefix: str, root: Path) -> str:
    """The biggest file with a copy under `root`, fetched both ways; the reason it is wrong,
    or "" when it is right."""
    copies = sorted(root.rglob("*.js" + SUFFIX), key=lambda p: p.stat().st_size)
    if not copies:
        return f"no gzip copies under {root}"
    copy = copies[-1]
    plain = copy.with_name(copy.name[: -len(SUFFIX)])
    url = f"{base}{prefix}{plain.relative_to(root).as_posix()}?v=build-check"
    status, headers, body = fetch(url, token, gzip_ok=True)
    if status != 200 or headers.get("content-encoding") != "gzip":
        encoding = headers.get("content-encoding")
        return f"{url} with gzip accepted: {status}, Content-Encoding {encoding}"
    if body != copy.read_bytes():
        return f"{url}: the gzip body is not the build's copy (compressed on the fly?)"
    if "javascript" not in headers.get("content-type", ""):
        return f"{url}: Content-Type {headers.get('content-type')}"
    if "accept-encoding" not in headers.get("vary", "").lower():
        return f"{url}: no Vary: Accept-Encoding ({headers.get('vary')})"
    status, headers, body = fetch(url, token, gzip_ok=False)
    if status != 200 or "content-encoding" in headers or body != plain.read_bytes():
        return f"{url} without Accept-Encoding: {status}, {headers.get('content-encoding')}"
    return ""


def check() -> None:
    from build_lab_server import lab_server  # beside this file in the build

    with tempfile.TemporaryDirectory() as home:
        env = {"PYTHONDONTWRITEBYTECODE": "1"}
        with lab_server(Path(home), "precompress-build-check", env) as server:
            problems = [
                check_served(server.base, server.token, prefix, root)
                for prefix, root in STATIC_DIRS.items()
            ]
    problems = [p for p in problems if p]
    if problems:
        raise SystemExit("precompress_static: gzip copies not served: " + "; ".join(problems))
    say("checked: the server sends the build's gzip copies, and plain files without gzip")


if __name__ == "__main__":
    {"write": write, "check": check}[sys.argv[1]]()
