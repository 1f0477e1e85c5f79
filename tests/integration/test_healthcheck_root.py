"""The image's health check, attacked from inside: the notebook user must not get code run as root.

A container started as root (NB_UID, CHOWN_HOME, … — the way the spawner starts it for those
switches) runs the image's HEALTHCHECK as root too. The notebook user (jovyan) tampers with
everything the check runs or imports, then we let the check run a few times and look for the
marker file that the tampered code would leave behind as root.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from polling import wait_until

pytestmark = pytest.mark.integration

MARKER = "/tmp/berth-hc-pwned"
REAL_PATH = "/usr/local/lib/berth/docker_healthcheck.py"

TAMPER = r"""
import glob, os, sys
payload = "import os; open('MARKER-%d' % os.getuid(), 'w').close()\n"
done = []

def attempt(label, action):
    try:
        action()
        done.append(label)
    except OSError:
        pass

def inject(path):  # the payload right after the shebang line, so it runs first
    lines = open(path).read().splitlines(True)
    with open(path, "w") as f:
        f.write("".join(lines[:1] + [payload] + lines[1:]))

def replace(path):
    os.rename(path, path + ".orig")
    with open(path, "w") as f:
        f.write("#!/usr/bin/python3\n" + payload)
    os.chmod(path, 0o755)

checks = ["/etc/jupyter/docker_healthcheck.py", "REAL_PATH"]
for path in checks:
    attempt("edit " + path, lambda p=path: inject(p))
for path in checks:
    attempt("replace " + path, lambda p=path: replace(p))
dirs = {p for p in sys.path if p and os.path.isdir(p)}
dirs |= set(glob.glob("/usr/lib/python3*"))
dirs |= set(glob.glob("/usr/local/lib/python3*/dist-packages"))
dirs |= {"/etc/jupyter", "/usr/local/lib/berth", "/usr/lib/python3/dist-packages"}
for d in sorted(dirs):
    for module in ["json", "ssl", "glob", "pwd", "sitecustomize", "usercustomize"]:
        target = os.path.join(d, module + ".py")
        attempt("plant " + target, lambda t=target: open(t, "w").write(payload))
    pth = os.path.join(d, "berth-hc.pth")
    attempt("plant " + pth, lambda t=pth: open(t, "w").write(payload))
for f in glob.glob("/usr/lib/python3*/json/__init__.py") + glob.glob("/usr/lib/python3*/ssl.py"):
    attempt("edit " + f, lambda t=f: open(t, "a").write("\n" + payload))
print("\n".join(done))
""".replace("MARKER", MARKER).replace("REAL_PATH", REAL_PATH)


def exec_out(container: Any, cmd: list[str], user: str) -> tuple[int, str]:
    result = container.exec_run(cmd, user=user)
    return result.exit_code, result.output.decode("utf-8", "replace")


def health_runs(container: Any) -> int:
    container.reload()
    log = (container.attrs["State"].get("Health") or {}).get("Log") or []
    return len({entry["Start"] for entry in log}), log


def test_tampered_health_check_never_runs_as_root(run_container: Any) -> None:
    """Fails on main before the change: /etc/jupyter/docker_healthcheck.py was group-writable by
    `users` (fix-permissions), so jovyan's edit ran as root at the next health check."""
    container = run_container(
        user="root",
        environment={"CHOWN_HOME": "yes"},  # a root start, as the spawner does for the switches
        cap_drop=["ALL"],
        cap_add=["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"],
        security_opt=["no-new-privileges"],
        healthcheck={"interval": 10**9, "timeout": 3 * 10**9, "retries": 3, "start_period": 10**9},
        network_disabled=True,
    )
    deadline = time.monotonic() + 90
    while health_runs(container)[0] < 1:
        assert time.monotonic() < deadline, "the health check never ran"
        time.sleep(1)

    status, done = exec_out(container, ["/opt/venv/bin/python", "-c", TAMPER], user="1000")
    assert status == 0, done
    assert f"edit {REAL_PATH}" not in done and f"replace {REAL_PATH}" not in done, done

    # Let the (possibly tampered) health check run a few more times, as root.
    _, log_before = health_runs(container)
    seen = {entry["Start"] for entry in log_before}
    deadline = time.monotonic() + 60
    while True:
        _, log = health_runs(container)
        if len({entry["Start"] for entry in log} - seen) >= 3:
            break
        assert time.monotonic() < deadline, log
        time.sleep(1)

    # The check still passes once the server answers, which on a loaded machine can be after
    # the runs above (the checks before it fail, retries=3 makes the container "unhealthy"
    # meanwhile, and the first passing check makes it healthy again).
    def health() -> dict[str, Any]:
        container.reload()
        return dict(container.attrs["State"]["Health"])

    wait_until(lambda: health()["Status"] == "healthy", 180, lambda: str(health()), step=1)
    _, listing = exec_out(container, ["sh", "-c", f"ls {MARKER}-* 2>/dev/null; true"], "root")
    assert f"{MARKER}-0" not in listing, f"tampered code ran as root; tampering done:\n{done}"
    assert listing.strip() == "", listing  # nor as anyone else: nothing tampered ran at all

    # And the check itself, started as root in this container, drops to NB_UID before it works.
    probe = (
        f"src = open({REAL_PATH!r}).read().replace('sys.exit(main())', "
        "'print(os.getuid(), os.getgid())'); exec(compile(src, 'hc', 'exec'))"
    )
    status, out = exec_out(container, ["/usr/bin/python3", "-I", "-S", "-c", probe], "root")
    assert (status, out.split()) == (0, ["1000", "100"]), out
