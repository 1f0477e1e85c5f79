"""Resident memory of the processes inside a container, read from /proc by a shell in it."""

from __future__ import annotations

import re

from docker.models.containers import Container


def max_rss_mib(container: Container, cmdline_pattern: str) -> float:
    """The largest VmRSS in MiB among the container's processes whose command line matches
    `cmdline_pattern` (a shell `case` pattern); NaN when none does or bash cannot run."""
    script = (
        "for s in /proc/[0-9]*/status; do c=$(tr '\\0' ' ' < ${s%status}cmdline 2>/dev/null);"
        f' case "$c" in {cmdline_pattern}) grep VmRSS "$s";; esac; done'
    )
    code, output = container.exec_run(["bash", "-c", script])
    values = [int(kb) for kb in re.findall(r"VmRSS:\s+(\d+) kB", output.decode())]
    return max(values) / 1024 if code == 0 and values else float("nan")
