"""The figures of ``bench/spawn.py``: a scenario's latencies summed up, and the table it prints
(p50/p95/wall per spawner and scenario, cost growth, the ratios Berth / DockerSpawner)."""

from __future__ import annotations

import statistics
from typing import Any


def summary(latencies: list[float], wall: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    p95_index = max(0, min(len(ordered) - 1, round(0.95 * len(ordered)) - 1))
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered) if ordered else 0.0,
        "p95": ordered[p95_index] if ordered else 0.0,
        "wall": wall,
    }


def report(all_results: list[dict[str, Any]]) -> str:
    lines = [
        f"{'spawner':<14} {'scenario':<11} {'n':>3} {'p50 s':>7} {'p95 s':>7} {'wall s':>7} "
        f"{'failed':>6}"
    ]
    for res in all_results:
        for scenario in ("sequential", "concurrent"):
            if scenario in res:
                s = res[scenario]
                lines.append(
                    f"{res['spawner']:<14} {scenario:<11} {s['n']:>3} {s['p50']:>7.2f} "
                    f"{s['p95']:>7.2f} {s['wall']:>7.2f} {s.get('failures', 0):>6}"
                )
    if any("growth" in res for res in all_results):
        lines.append("")
        lines.append(
            f"{'spawner':<14} {'running':>7} {'spawn p50 s':>11} {'hub CPU s/spawn':>15} "
            f"{'hub idle CPU %':>14}"
        )
        for res in all_results:
            for row in res.get("growth", []):
                lines.append(
                    f"{res['spawner']:<14} {row['running']:>7} {row['p50']:>11.2f} "
                    f"{row['hub_cpu_per_spawn']:>15.2f} {100 * row['hub_idle_cpu']:>14.1f}"
                )
    by_kind = {r["spawner"]: r for r in all_results}
    if {"berth", "dockerspawner"} <= set(by_kind):
        lines.append("")
        lines.append("ratios berth / dockerspawner (lower is better):")
        for scenario in ("sequential", "concurrent"):
            ours, theirs = by_kind["berth"].get(scenario), by_kind["dockerspawner"].get(scenario)
            if ours and theirs and ours["n"] and theirs["n"]:
                parts = [f"{k} {ours[k] / theirs[k]:.2f}" for k in ("p50", "p95", "wall")]
                lines.append(f"  {scenario:<11} " + "  ".join(parts))
    return "\n".join(lines)
