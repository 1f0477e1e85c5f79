"""The recorded start of base-notebook's build (slim_venv.py's step 5 and 6): runs a real start
(`jupyter lab`, a kernel, a terminal, the pages, jupyterhub-singleuser's imports) with RECORDER
first on PYTHONPATH, and returns the byte-code files every process loaded and the regular
expressions each compiled (berth_server_start.py's cache).

Standard library only. Every wait is bounded; the server it starts listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import marshal
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from build_lab_server import environment, get, lab_server

SITE = Path(sysconfig.get_paths()["purelib"])


def say(text: str) -> None:
    print(f"slim_venv: {text}", flush=True)


def request(url: str, token: str, method: str = "GET", body: dict | None = None) -> dict | None:
    data = None if body is None else json.dumps(body).encode()
    text = get(url, token, method=method, data=data, timeout=10)[2]
    return json.loads(text) if text[:1] in (b"{", b"[") else None


def wait_for(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"slim_venv: gave up waiting for {what} after {seconds:.0f} s")


# Put first on PYTHONPATH while recording: every Python process of the start (server, kernel,
# terminal) writes, each second and at exit, the byte-code files of the modules it has loaded.
# (-X importtime cannot be used: it does not see submodules loaded by `from package import x`.)
# It also records the regular expressions each process compiles (berth_server_start.py's cache).
RECORDER = """
import atexit, marshal, os, sys, threading, time
import importlib._bootstrap_external as external
from re import _compiler as re_compiler
_loaded = set()  # also modules whose import then failed (e.g. a Windows-only branch)
_patterns = set()
_NAME = f"{os.getpid()}-{time.monotonic_ns()}"  # an exec keeps the pid: one file per image
_get_code = external.SourceFileLoader.get_code
def _get_code_recorded(self, fullname):
    _loaded.add(external.cache_from_source(self.get_filename(fullname)))
    return _get_code(self, fullname)
external.SourceFileLoader.get_code = _get_code_recorded
_re_compile = re_compiler.compile
def _re_compile_recorded(pattern, flags=0):
    if isinstance(pattern, (str, bytes)) and isinstance(flags, int):
        _patterns.add((pattern, flags))
    return _re_compile(pattern, flags)
re_compiler.compile = _re_compile_recorded
def _berth_record():
    path = os.path.join(os.environ["BERTH_RECORD_DIR"], _NAME)
    with open(path + ".tmp", "w") as out:
        out.write("\\n".join(sorted(_loaded)))
    os.replace(path + ".tmp", path)
    with open(path + ".regex.tmp", "wb") as out:
        marshal.dump(set(_patterns), out)
    os.replace(path + ".regex.tmp", path + ".regex")
def _berth_loop():
    while True:
        time.sleep(1)
        _berth_record()
def _recorded_first(exec_function):
    def run(*args):
        _berth_record()  # `jupyter lab` replaces itself with jupyter-lab: no atexit then
        return exec_function(*args)
    return run
os.execv, os.execve = _recorded_first(os.execv), _recorded_first(os.execve)
threading.Thread(target=_berth_loop, daemon=True).start()
atexit.register(_berth_record)
"""


def quiet(directory: Path, seconds: float = 3.0) -> bool:
    """No process has loaded a new module for a while."""
    before = sorted((p.name, p.stat().st_size) for p in directory.iterdir())
    time.sleep(seconds)
    return before == sorted((p.name, p.stat().st_size) for p in directory.iterdir())


def bytecode_used_at_start() -> tuple[set[Path], set[tuple[str | bytes, int]]]:
    """The byte-code files loaded by a real start (server, kernel, terminal, pages, singleuser)
    and the regular expressions (pattern, flags) its processes compiled."""
    token = "slim-venv-build-only"
    with tempfile.TemporaryDirectory() as home:
        hook, records = Path(home) / "hook", Path(home) / "records"
        hook.mkdir()
        records.mkdir()
        (hook / "sitecustomize.py").write_text(RECORDER)
        env = {"PYTHONPATH": str(hook), "BERTH_RECORD_DIR": str(records)}
        with lab_server(Path(home), token, env) as server:
            base = server.base
            kernel = request(f"{base}/api/kernels", token, "POST", {"name": "python3"})
            assert kernel is not None
            request(f"{base}/api/terminals", token, "POST", {})
            for page in ("lab", "tree", "nbclassic/tree", "api/contents", "api/kernelspecs",
                         "lab/api/settings", "api/sessions", "api/me"):  # fmt: skip
                try:
                    request(f"{base}/{page}", token)
                except OSError as error:  # a page that moved costs byte-code, not the build
                    say(f"recording: {page}: {error}")
            # The kernel is up once a third process (jupyter, server, kernel) has recorded
            # ipykernel; then wait until no process loads anything new.
            wait_for(
                lambda: any("ipykernel/__pycache__/ipkernel." in p.read_text()
                            for p in records.iterdir() if p.suffix == ""),
                120, "the kernel",
            )  # fmt: skip
            wait_for(lambda: quiet(records), 120, "the start to settle")
            request(f"{base}/api/shutdown", token, "POST", {})
            server.process.wait(timeout=60)
        subprocess.run(
            [sys.executable, "-c",
             "import jupyterhub.singleuser, jupyterhub.singleuser.extension,"
             " IPython.core.completer, jedi, ipykernel.kernelapp"],
            env=environment(Path(home), env), check=True,
        )  # fmt: skip
        lists = [p for p in records.iterdir() if p.suffix == ""]
        used = {Path(line) for p in lists for line in p.read_text().splitlines()}
        patterns: set[tuple[str | bytes, int]] = set()
        for p in records.glob("*.regex"):
            patterns |= marshal.loads(p.read_bytes())
    server_pyc = SITE / "jupyter_server" / "__pycache__" / "serverapp.cpython-311.pyc"
    if not any(p.name.startswith("serverapp.") and "jupyter_server" in p.parts for p in used):
        sys.exit(f"slim_venv: the start-up recording is missing the server ({server_pyc})")
    return used, patterns
