#!/usr/bin/env -S python3 -S
"""Start the Jupyter server: the default command of Berth's notebook images.

start.sh (the entrypoint) has already fitted the user; this runs

    jupyter ${DOCKER_STACKS_JUPYTER_CMD:-lab} ${NOTEBOOK_ARGS} "$@"

as jupyter/docker-stacks' start-notebook.py does, so that the same `docker run` lines work:

- JUPYTERHUB_API_TOKEN set: a JupyterHub spawned this container, so start-singleuser.py (the
  jupyterhub-singleuser server) runs instead, with the same arguments;
- RESTARTABLE=yes: the server is restarted whenever it exits (e.g. File > Shut Down), and the
  container keeps running; docker-stacks uses run-one-constantly for this, we loop here;
- NOTEBOOK_ARGS: shell-quoted extra arguments, before those given on the command line.

Settings are checked first and a bad one stops the start with one line naming the variable.
Standard library only: it runs before the server's environment is known to work, and must be fast:
at every spawn it runs before the server's own Python, so it starts without the site module
(`python3 -S`: no site-packages needed) and imports only what a start uses (no pathlib, shutil,
subprocess or signal). Measured in the image: 34 -> 26 ms of CPU per run (median of 40).
start-singleuser.py imports this file, and so do the unit tests.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

PROG = "start-notebook.py"
TRUE_VALUES = frozenset({"1", "yes", "true", "on"})
# A jupyter subcommand: `jupyter lab` runs the program jupyter-lab found on PATH.
SUBCOMMAND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# SHA-256 of the start-singleuser.py shipped beside this script (a unit test keeps it true).
# While that file is unchanged, all it would do is import this file and call
# main(singleuser=True): that runs here instead, saving a second Python start at every spawn
# (~0.1 s on a loaded 2-core host). An image that replaces the script gets it exec'd as before.
OWN_SINGLEUSER_SHA256 = "be8d6f84325320f3955b6778bd82460640acb07b8519dee1b1e6a97c5d84479a"


class StartError(Exception):
    """A setting that makes the start impossible; its message is shown as one line."""


def log(message: str, level: str = "INFO") -> None:
    """Log like start.sh (docker-stacks' "INFO[2024-05-01 12:00:00] message"), on stderr."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{level}[{stamp}] {message}", file=sys.stderr, flush=True)


def is_true(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE_VALUES


def jupyter_port(env: Mapping[str, str]) -> int | None:
    """JUPYTER_PORT as an int (jupyter_server reads it itself), or None when unset."""
    value = env.get("JUPYTER_PORT")
    if value is None:
        return None
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 1 <= int(value) <= 65535:
        raise StartError(f"JUPYTER_PORT={value!r} is not a TCP port: use an integer 1-65535")
    return int(value)


def jupyter_subcommand(env: Mapping[str, str]) -> str:
    """DOCKER_STACKS_JUPYTER_CMD: lab (default), notebook, nbclassic, server, or any other one."""
    value = env.get("DOCKER_STACKS_JUPYTER_CMD", "lab")
    if not SUBCOMMAND_RE.match(value):
        raise StartError(
            f"DOCKER_STACKS_JUPYTER_CMD={value!r} is not a jupyter subcommand such as lab, "
            "notebook, nbclassic or server (put extra arguments in NOTEBOOK_ARGS)"
        )
    return value


def notebook_args(env: Mapping[str, str]) -> list[str]:
    """NOTEBOOK_ARGS split the way a shell would split them."""
    try:
        return shlex.split(env.get("NOTEBOOK_ARGS", ""))
    except ValueError as error:
        raise StartError(f"NOTEBOOK_ARGS cannot be split into arguments: {error}") from None


def server_command(env: Mapping[str, str], argv: Sequence[str]) -> list[str]:
    """The command of a standalone server: jupyter SUBCOMMAND NOTEBOOK_ARGS... ARGV..."""
    return ["jupyter", jupyter_subcommand(env), *notebook_args(env), *argv]


def singleuser_command(env: Mapping[str, str], argv: Sequence[str]) -> list[str]:
    """The command of a JupyterHub single-user server (the hub configures it through env)."""
    return ["jupyterhub-singleuser", *notebook_args(env), *argv]


def on_path(name: str, path: str | None) -> bool:
    """Whether an executable file `name` is in a directory of `path` (PATH when None): what
    shutil.which answers for a name without a slash, without importing shutil."""
    directories = (os.environ.get("PATH", os.defpath) if path is None else path).split(os.pathsep)
    for directory in directories:
        candidate = os.path.join(directory or os.curdir, name)
        if os.access(candidate, os.F_OK | os.X_OK) and not os.path.isdir(candidate):
            return True
    return False


def require_program(name: str, setting: str, path: str | None) -> None:
    """Fail early, naming the setting, when the program to run is not installed."""
    if not on_path(name, path):
        raise StartError(f"{setting}: {name} is not installed in this image (not found on PATH)")


def run_restartable(
    command: Sequence[str],
    *,
    delay: float = 1.0,
    popen: Callable[..., subprocess.Popen] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_runs: int | None = None,
) -> int:
    """Run command again each time it exits, until this process is told to stop.

    SIGTERM, SIGINT and SIGHUP end the loop; they are passed on to the server (under `tini -g`
    it gets them directly too, which it tolerates). Returns the last exit status, 128 + N for a
    server killed by signal N as a shell reports it (a negative status would leave the
    container with 256 - N: 241 for SIGTERM). `max_runs` exists for tests.
    """
    import signal  # only here: a plain start never loads them (see the docstring above)
    import subprocess

    popen = subprocess.Popen if popen is None else popen
    stopping = False
    child: subprocess.Popen | None = None

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    runs = 0
    while True:
        child = popen(list(command))
        status = child.wait()
        runs += 1
        if stopping or (max_runs is not None and runs >= max_runs):
            return status if status >= 0 else 128 - status
        log(f"{command[0]} exited with status {status}; RESTARTABLE=yes, so starting it again")
        sleep(delay)


def is_own_singleuser_script(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is the start-singleuser.py shipped with this script, unchanged."""
    try:
        with open(path, "rb") as script:
            return hashlib.sha256(script.read()).hexdigest() == OWN_SINGLEUSER_SHA256
    except OSError:
        return False


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    singleuser: bool = False,
) -> int:
    """Start the server; returns an exit status only when nothing was exec'd."""
    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    prog = "start-singleuser.py" if singleuser else PROG
    try:
        if not singleuser and "JUPYTERHUB_API_TOKEN" in env:
            # Spawned by a JupyterHub that kept the image's default command: the hub needs the
            # single-user server: start-singleuser.py, run here while it is our own (see
            # OWN_SINGLEUSER_SHA256), else exec'd, so images can replace it.
            log("JUPYTERHUB_API_TOKEN is set: starting start-singleuser.py instead", "WARNING")
            here = os.path.dirname(os.path.realpath(__file__))
            script = os.path.join(here, "start-singleuser.py")
            if is_own_singleuser_script(script):
                return main(argv, env, singleuser=True)
            os.execv(script, [script, *argv])
        jupyter_port(env)
        if singleuser:
            command = singleuser_command(env, argv)
            require_program(command[0], "jupyterhub-singleuser", env.get("PATH"))
        else:
            command = server_command(env, argv)
            require_program(
                f"jupyter-{command[1]}",
                f"DOCKER_STACKS_JUPYTER_CMD={command[1]}",
                env.get("PATH"),
            )
    except StartError as error:
        log(f"{prog}: {error}", "FATAL")
        return 1
    log(f"Executing: {shlex.join(command)}")
    if not singleuser and is_true(env.get("RESTARTABLE")):
        return run_restartable(command)
    os.execvp(command[0], command)
    return 1  # not reached: execvp replaced this process or raised


if __name__ == "__main__":
    sys.exit(main())
