"""Default resource limits of user servers (pure; the host's size is passed in).

Without limits one user's fork bomb or memory hog takes the whole host down, the hub and its
database included. So every user server gets a process (pids) limit, a memory limit and a CPU
limit unless the operator sets other values (``0`` or ``None`` turns one off).
"""

from __future__ import annotations

import os

DEFAULT_PIDS_LIMIT = 1024
DEFAULT_MEM_CAP = 2 * 1024**3  # 2 GiB
MEM_HOST_SHARE = 4  # at most a quarter of the host's memory per server


def host_memory() -> int | None:
    """Physical memory of this host in bytes, or None when the OS does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def default_mem_limit(host_total: int | None = None) -> int:
    """2 GiB, or a quarter of the host's memory when that is less (never below 256 MiB)."""
    total = host_memory() if host_total is None else host_total
    if not total:
        return DEFAULT_MEM_CAP
    return max(256 * 1024**2, min(DEFAULT_MEM_CAP, total // MEM_HOST_SHARE))


def default_cpu_limit(cpus: int | None = None) -> float:
    """One CPU on hosts with up to 4 CPUs, else two."""
    count = os.cpu_count() if cpus is None else cpus
    return 1.0 if (count or 1) <= 4 else 2.0


BOOT_MEMORY = 512 * 1024**2  # room per booting server (~100-150 MiB resident), kept generous
BOOTS_PER_CPU = 16


def default_boot_ceiling(cpus: int | None = None, host_total: int | None = None) -> int:
    """Most servers booting at once under adaptive admission: 16 per CPU, no more than one
    per 512 MiB of the host's memory, never fewer than CPUs + 1. The admission itself
    decides below it; the ceiling only bounds what a loaded host can make it admit."""
    count = (os.cpu_count() if cpus is None else cpus) or 2
    total = host_memory() if host_total is None else host_total
    ceiling = BOOTS_PER_CPU * count
    if total:
        ceiling = min(ceiling, total // BOOT_MEMORY)
    return max(count + 1, ceiling)


def describe(mem_limit: int | None, cpu_limit: float | None, pids_limit: int | None) -> str:
    """``memory 2 GiB, 1 CPU, 1024 processes`` (``no … limit`` for an unset one)."""
    memory = f"memory {mem_limit / 1024**3:g} GiB" if mem_limit else "no memory limit"
    cpu = f"{cpu_limit:g} CPU" + ("s" if cpu_limit != 1 else "") if cpu_limit else "no CPU limit"
    pids = f"{pids_limit} processes" if pids_limit else "no process limit"
    return f"{memory}, {cpu}, {pids}"
