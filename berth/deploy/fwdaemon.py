"""Keeps the firewall's rules in place (`python -m berth.deploy.firewall apply|check|remove`).

Runs in the host's network namespace with NET_ADMIN. `apply` writes the rules, compares them
with the running ones every few seconds and writes them again when someone flushed or changed
them. Stopping it (SIGTERM) leaves the rules in place: the firewall is replaced by every
`berth up` that changes it, and removing the rules then would open the host and the link-local
addresses to user servers until the new one runs. `check` (the container's healthcheck) says
whether the rules are in place; `remove` removes exactly its own chains and jumps.

Only the nf_tables back end of iptables is used: it is what dockerd uses on current
distributions, and it commits each restore as one transaction, so writing our rules cannot
undo a change that dockerd makes at the same time (the legacy back end rewrites whole tables).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from berth.deploy.firewall import (
    CHECK_INTERVAL_SECONDS,
    FirewallSpec,
    Ruleset,
    drift,
    hook_counts,
    render,
    render_removal,
    ruleset_v4,
    ruleset_v6,
)
from berth.engine_kind import PODMAN

BRIDGE_NF = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")
RESTORE_ATTEMPTS = 3


class FirewallError(Exception):
    pass


@dataclass(frozen=True)
class Family:
    name: str
    list_command: str
    restore_command: str
    ruleset: Ruleset


def families(spec: FirewallSpec) -> list[Family]:
    return [
        Family("IPv4", "iptables-nft", "iptables-nft-restore", ruleset_v4(spec)),
        Family("IPv6", "ip6tables-nft", "ip6tables-nft-restore", ruleset_v6(spec)),
    ]


def say(message: str) -> None:
    print(f"berth-firewall: {message}", file=sys.stderr, flush=True)


def running_rules(family: Family) -> list[str]:
    result = subprocess.run(
        [family.list_command, "-t", "filter", "-S"], capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise FirewallError(f"{family.list_command} -S failed: {result.stderr.strip()}")
    return [line for line in result.stdout.splitlines() if line and not line.startswith("#")]


def restore(family: Family, text: str) -> None:
    error = ""
    for attempt in range(RESTORE_ATTEMPTS):
        result = subprocess.run(
            [family.restore_command, "--noflush"],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode == 0:
            return
        # A concurrent change by dockerd makes the transaction fail; it is retried.
        error = result.stderr.strip()
        time.sleep(0.5 * (attempt + 1))
    raise FirewallError(f"{family.restore_command} failed: {error}")


def sync(family: Family) -> list[str]:
    """Make the running rules equal to the family's ruleset; returns what had to be fixed."""
    lines = running_rules(family)
    problems = drift(family.ruleset, lines)
    if problems:
        restore(family, render(family.ruleset, hook_counts(family.ruleset, lines)))
    return problems


def remove(family: Family) -> bool:
    text = render_removal(family.ruleset, running_rules(family))
    if text:
        restore(family, text)
    return bool(text)


def bridge_filtering_problem() -> str:
    try:
        value = BRIDGE_NF.read_text().strip()
    except OSError:
        value = "missing"
    if value == "1":
        return ""
    return (
        f"{BRIDGE_NF} is {value}: traffic between containers on one bridge bypasses iptables "
        "(load br_netfilter and set it to 1)"
    )


def check_forward_chain(spec: FirewallSpec) -> None:
    """The chain the forwarded-traffic jumps go to must be in the nf_tables back end."""
    chain = spec.forward_chain
    result = subprocess.run(
        ["iptables-nft", "-t", "filter", "-S", chain],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise FirewallError(
            f"the {chain} chain is not in the nf_tables back end of iptables: the engine runs "
            "with iptables disabled or with the legacy back end, which Berth's firewall does "
            f"not support ({result.stderr.strip()})"
        )


def apply_forever(spec: FirewallSpec, stop: threading.Event, interval: float) -> None:
    """Apply, then re-check every `interval` seconds until `stop` is set; the rules stay."""
    check_forward_chain(spec)
    problem = bridge_filtering_problem()
    if problem:
        # On Docker, enable_icc=false still keeps user servers apart; on Podman nothing does
        # (the rules are applied all the same: they keep the host and egress closed), and the
        # check (the container's healthcheck, which `berth up` waits for) fails.
        say(f"{'error' if spec.engine == PODMAN else 'warning'}: {problem}")
    applied: set[str] = set()
    while not stop.is_set():
        for family in families(spec):
            try:
                problems = sync(family)
            except (FirewallError, subprocess.SubprocessError) as exc:
                # Kept running: a restore is atomic, so the rules are as they were before.
                say(f"error: {exc}")
                continue
            if family.name not in applied:
                say(f"{family.name} rules for bridge {spec.bridge} in place")
                applied.add(family.name)
            elif problems:
                say(f"{family.name} rules re-applied: " + "; ".join(problems))
        stop.wait(interval)
    say(f"stopped; the rules for bridge {spec.bridge} stay in place (`remove` takes them away)")


def check(spec: FirewallSpec) -> list[str]:
    problems = [bridge_filtering_problem()]
    for family in families(spec):
        problems += [f"{family.name}: {p}" for p in drift(family.ruleset, running_rules(family))]
    return [p for p in problems if p]


def main(action: str, spec: FirewallSpec) -> int:
    try:
        if action == "check":
            problems = check(spec)
            for problem in problems:
                print(problem)
            return 1 if problems else 0
        if action == "remove":
            for family in families(spec):
                remove(family)
            return 0
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        apply_forever(spec, stop, CHECK_INTERVAL_SECONDS)
        return 0
    except (FirewallError, subprocess.SubprocessError, OSError) as exc:
        say(f"error: {exc}")
        return 1
