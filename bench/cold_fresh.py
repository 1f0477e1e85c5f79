"""The cold path on a fresh Debian 12 system: README's first command, verbatim, timed.

    python bench/cold.py --fresh-host [--before COMMIT] [--log DIR]

The "machine" is a container of the shared engine from `berth/os-base:bookworm` (Debian 12 as
mmdebstrap makes it, minbase: no Docker, no Python, no CA store), run like the Swarm tests'
nodes (tests/swarm_cluster.py: every capability but one, its own /var/lib/docker volume, the
host's cgroups) on a bridge network of its own; no systemd in it, as in many containers and
some VMs. Made to look like a freshly installed machine first: Debian's sources with its
security and updates suites, dpkg writing docs and man pages and fsyncing as on any install
(the bootstrap's dpkg settings removed), this machine's resolver, and the proxy's CA where a
user behind a TLS-inspecting proxy puts it (/usr/local/share/ca-certificates/, the proxy and CA
variables of this machine's environment). Then a clean export of the checkout (`git archive`)
in /root/berth, and there, as root:

    scripts/setup.sh && BERTH_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt berth up

each phase timed from the command's own lines: apt (update, download, unpacking), dockerd's
start, the virtualenv, Berth's install, each image build, `berth up`; then the scripted login
of the admin through the machine's port 8443 on the bench's bridge until the user's JupyterLab
answers. Everything is named `berth-cold-<run>-…` and removed at the end. Prints; asserts
nothing about speed. Traffic: the machine's downloads from Debian and the package index (through
this machine's proxy, as `berth images build` does), the rest on the bench's bridge.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import re
import shlex
import subprocess
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import docker
from swarm_cluster import NODE_RUN_OPTIONS

OS_IMAGE = "berth/os-base:bookworm"
COMMAND = "scripts/setup.sh && BERTH_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt berth up"
TIMEOUT = 900  # seconds for the whole command: it is stopped after that
# What a machine behind a proxy has in its environment (this one's values are passed on).
PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy",
                   "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
                   "SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT", "REQUESTS_CA_BUNDLE",
                   "CURL_CA_BUNDLE")  # fmt: skip
SOURCES = """\
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
"""

Phases = list[tuple[str, float]]
Lines = list[tuple[float, str]]


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _hidden(line: str) -> str:
    """The line without the throwaway admin's one-time password (for the log file)."""
    return re.sub(r"(one-time password: )\S+", r"\1…", line)


class FreshHost:
    """A fresh Debian 12 system in a container of the shared engine."""

    def __init__(self, host: docker.DockerClient, run: str) -> None:
        self.host, self.name = host, f"berth-cold-{run}"
        self.network = host.networks.create(f"{self.name}-net", driver="bridge")
        self.container = host.containers.run(
            OS_IMAGE, ["sleep", "infinity"], name=f"{self.name}-host", hostname="fresh",
            detach=True, init=True, network=self.network.name,
            volumes={f"{self.name}-docker": {"bind": "/var/lib/docker", "mode": "rw"},
                     "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
            **NODE_RUN_OPTIONS,
        )  # fmt: skip
        self.container.reload()
        networks = self.container.attrs["NetworkSettings"]["Networks"]
        self.address: str = networks[self.network.name]["IPAddress"]
        self.packages = 0  # Debian packages before the command

    def sh(self, script: str) -> str:
        code, output = self.container.exec_run(["sh", "-ec", script])
        text = output.decode(errors="replace") if isinstance(output, bytes) else ""
        if code != 0:
            raise RuntimeError(f"in the fresh host: {script!r}: {text}")
        return text

    def prepare(self, tree: bytes) -> None:
        """What a fresh install has and the bootstrap left out; the user's CA; the checkout."""
        # A machine's kernel settings are writable (dockerd without the userland proxy sets
        # route_localnet on its bridge); Docker mounts them read-only in a container.
        self.sh("mount -o remount,rw /proc/sys")
        # The bootstrap's dpkg settings (no docs, man pages, fsync) are not a real install's.
        self.sh("rm -f /etc/dpkg/dpkg.cfg.d/99mmdebstrap")
        self.container.put_archive("/", _tar({"etc/apt/sources.list": SOURCES.encode()}))
        # The machine's resolver (on a bridge Docker writes its own, which engines inside
        # cannot use: their builds would fall back to public resolvers).
        resolver = Path("/etc/resolv.conf").read_text()
        self.sh(f"printf '%s' {shlex.quote(resolver)} > /etc/resolv.conf")
        local_cas = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
        self.container.put_archive(
            "/", _tar({f"usr/local/share/ca-certificates/{ca.name}": ca.read_bytes()
                       for ca in local_cas})
        )  # fmt: skip
        self.sh("mkdir -p /root/berth")
        self.container.put_archive("/root/berth", tree)
        self.packages = int(self.sh("dpkg-query -W | wc -l"))

    def run(self, log: Path | None) -> tuple[Lines, int]:
        """README's command in /root/berth, as root: each line with the time it arrived."""
        environment = {name: os.environ[name] for name in PROXY_VARIABLES if name in os.environ}
        exec_id = self.host.api.exec_create(
            self.container.id, ["timeout", str(TIMEOUT), "bash", "-c", COMMAND],
            workdir="/root/berth", environment=environment,
        )["Id"]  # fmt: skip
        lines: Lines = []
        pending = ""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # "✓" may be split
        started = time.perf_counter()
        for chunk in self.host.api.exec_start(exec_id, stream=True):
            now = time.perf_counter()
            pending += decoder.decode(chunk)
            *complete, pending = pending.split("\n")
            lines += [(now, re.sub(r"\x1b\[[0-9;]*m", "", line)) for line in complete]
        if pending:
            lines.append((time.perf_counter(), pending))
        if log is not None:
            log.write_text("".join(f"{now - started:8.2f} {_hidden(line)}\n"
                                   for now, line in lines))  # fmt: skip
        code = int(self.host.api.exec_inspect(exec_id)["ExitCode"])
        return [(started, "(command started)"), *lines], code

    def installed(self) -> str:
        """How many Debian packages the command installed, and what apt downloaded."""
        packages = int(self.sh("dpkg-query -W | wc -l")) - self.packages
        cache = self.sh("du -sm /var/cache/apt/archives | cut -f1").strip()
        return f"{packages} Debian packages installed ({cache} MB downloaded)"

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.container.remove(force=True, v=True)
        with contextlib.suppress(Exception):
            self.host.volumes.get(f"{self.name}-docker").remove(force=True)
        with contextlib.suppress(Exception):
            self.network.remove()


# Lines of setup.sh, start-dockerd.sh and `berth up` that begin a phase, and its name.
MARKS = (
    ("(command started)", "setup.sh: start"),
    ("[setup] installing ", "setup.sh: apt-get update + install (download, unpack)"),
    ("[dockerd] ", "setup.sh: dockerd configured and started"),
    ("[setup] creating virtualenv", "setup.sh: python3 -m venv"),
    ("[setup] installing berth", "setup.sh: pip installs uv, uv installs Berth"),
    ("[setup] ready", "setup.sh: ready → berth up starts building"),
    ("pulling ", "os-base: registry pull attempt"),
    ("bootstrapping Debian", "os-base: mmdebstrap"),
    ("importing the root filesystem", "os-base: import into the engine"),
    ("building foundation", "build foundation"),
    ("✓ foundation built", "build hub and base-notebook (side by side)"),
    ("URL: ", "berth up: its last lines (accounts)"),
)
AFTER_BUILDS = "berth up: the service starts (images built)"


def phases_of(lines: Lines) -> Phases:
    """The phases between the first line of each mark in :data:`MARKS` (in the order they came)
    and the next one's, the last one until the last line; each image's own build time too."""
    seen: list[tuple[float, str]] = []
    for now, line in lines:
        text = line.strip()
        for prefix, name in MARKS:
            if text.startswith(prefix) and name not in (n for _, n in seen):
                seen.append((now, name))
    built = [now for now, line in lines if line.strip().startswith("✓ ")]
    if built:  # the last image built: the service's start begins
        seen.append((built[-1], AFTER_BUILDS))
    seen.sort()
    seen.append((lines[-1][0], ""))
    phases = [(name, seen[i + 1][0] - began) for i, (began, name) in enumerate(seen[:-1])]
    for _, line in lines:
        if match := re.match(r"✓ (\S+) built in (\S+)", line.strip()):
            phases.append((f"  ({match[1]}'s own build: {match[2]})", 0.0))
    return phases


def fresh_cold_path(
    host: docker.DockerClient, root: Path, commit: str, log: Path | None,
    login: Any,
) -> Phases:  # fmt: skip
    """README's first command on a fresh system from ``commit``'s tree; ``login(url, user,
    password)`` logs the admin in until the user's JupyterLab answers and returns its seconds."""
    tree = subprocess.run(["git", "archive", commit], cwd=root, capture_output=True,
                          check=True).stdout  # fmt: skip
    machine = FreshHost(host, uuid.uuid4().hex[:8])
    try:
        started = time.perf_counter()
        machine.prepare(tree)
        prepared = time.perf_counter() - started
        print(f"fresh host {machine.container.name} at {machine.address}, ready in "
              f"{prepared:.1f} s (not counted); running: {COMMAND}", flush=True)  # fmt: skip
        lines, code = machine.run(log)
        output = "\n".join(line for _, line in lines)
        if code != 0:
            raise RuntimeError(f"README's command failed ({code}):\n" + output[-4000:])
        phases = phases_of(lines)
        phases.append(("README's command, wall", lines[-1][0] - lines[0][0]))
        match = re.search(r"admin: (\S+)\s+one-time password: (\S+)", output)
        if match is None:
            raise RuntimeError(f"no admin password in berth up's output:\n{output[-2000:]}")
        phases.append(("login → the user's JupyterLab answers (spawn included)",
                       login(f"https://{machine.address}:8443", match[1], match[2])))  # fmt: skip
        print(f"  {machine.installed()}")
        return phases
    finally:
        machine.remove()
