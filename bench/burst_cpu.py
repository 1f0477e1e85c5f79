"""Where a burst's CPU goes: CPU seconds per part of the machine over one burst of spawns.

Used by ``bench/spawn.py --cpu-breakdown``: a snapshot before the burst, one after it (before
the servers are stopped), and the difference per part:

- ``hub``: the hub's process (JupyterHub, the spawner, admission), with its waited-for children;
- ``proxy``: configurable-http-proxy (node);
- ``dockerd``, ``containerd``: the engine's daemons (shared with everyone on this machine);
- ``shims``: the containerd shims (with the runc runs they waited for) that started during the
  burst, plus what the older ones spent meanwhile;
- ``servers``: the burst's containers (cgroup v1 ``cpuacct.usage`` of each, read at the end);
- ``bench``: this process (the benchmark's own requests);
- ``other``: the rest of the machine's busy time (/proc/stat): the kernel's workers (network
  namespaces, veths), other users' work.

Linux only; reads /proc and /sys, never writes. Missing parts (another cgroup layout) count 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
CGROUP_CPUACCT = Path("/sys/fs/cgroup/cpuacct/docker")


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


def process_stat(pid: int) -> tuple[str, int, float]:
    """(command name, parent pid, CPU seconds with its waited-for children's) of a process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "", 0, 0.0
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw.rsplit(")", 1)[1].split()
    return name, int(fields[1]), sum(int(f) for f in fields[11:15]) / TICK


def processes(parent: int, prefix: str) -> dict[int, float]:
    """CPU seconds of the processes whose parent is ``parent`` and name starts with ``prefix``
    (the host's own: a daemon of the same name inside a container has another parent)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            name, ppid, used = process_stat(int(entry.name))
            if ppid == parent and name.startswith(prefix):
                found[int(entry.name)] = used
    return found


def container_cpu(container_id: str) -> float:
    try:
        return int((CGROUP_CPUACCT / container_id / "cpuacct.usage").read_text()) / 1e9
    except OSError:
        return 0.0


def all_processes() -> dict[int, tuple[str, float]]:
    """(name, CPU seconds without children's) of every process, kernel threads included."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "stat").read_text()
            except OSError:
                continue
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            fields = raw.rsplit(")", 1)[1].split()
            found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / TICK)
    return found


@dataclass
class Snapshot:
    busy: float
    singles: dict[str, float]
    shims: dict[int, float] = field(default_factory=dict)
    everyone: dict[int, tuple[str, float]] = field(default_factory=dict)


def snapshot(pids: dict[str, int]) -> Snapshot:
    singles = {part: process_stat(pid)[2] for part, pid in pids.items()}
    dockerd = int(Path("/var/run/docker.pid").read_text())
    singles["dockerd"] = process_stat(dockerd)[2]
    singles["containerd"] = sum(processes(dockerd, "containerd").values())
    return Snapshot(machine_busy(), singles, processes(1, "containerd-shim"), all_processes())


def by_name(before: Snapshot, after: Snapshot, top: int = 12) -> list[tuple[str, float]]:
    """The processes that used the most CPU in between, by name (own time only; processes
    that began and ended in between are not seen, except in their waiting parents' figures)."""
    used: dict[str, float] = {}
    for pid, (name, cpu) in after.everyone.items():
        old = before.everyone.get(pid)  # by pid: a kernel worker's name tells its current job
        delta = cpu - (old[1] if old else 0.0)
        short = name.split("-", 1)[0] if name.startswith("kworker") else name
        used[short] = used.get(short, 0.0) + delta
    return sorted(used.items(), key=lambda item: -item[1])[:top]


def breakdown(before: Snapshot, after: Snapshot, containers: list[str]) -> dict[str, float]:
    """CPU seconds per part between two snapshots; ``containers``: the burst's container ids."""
    parts = {part: after.singles[part] - before.singles.get(part, 0.0) for part in after.singles}
    parts["shims"] = sum(used - before.shims.get(pid, 0.0) for pid, used in after.shims.items())
    parts["servers"] = sum(container_cpu(cid) for cid in containers)
    parts["total"] = after.busy - before.busy
    parts["other"] = parts["total"] - sum(v for k, v in parts.items() if k != "total")
    return parts


def format_breakdown(
    kind: str, parts: dict[str, float], spawns: int, names: list[tuple[str, float]]
) -> str:
    lines = [f"{kind}: CPU seconds over the burst ({spawns} spawns), total and per spawn"]
    for part, used in sorted(parts.items(), key=lambda item: -item[1]):
        lines.append(f"  {part:<11} {used:7.2f} {used / max(1, spawns):7.3f}")
    lines.append(
        "  by process name (live at the end): "
        + ", ".join(f"{name} {used:.2f}" for name, used in names)
    )
    return "\n".join(lines)
