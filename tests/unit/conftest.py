"""Unit-test hooks: report how many cases the property-based bad-input tests generated."""

from __future__ import annotations

import sys

import pytest


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    module = sys.modules.get("bad_input")  # imported by tests/unit/test_bad_input_*.py
    if module is None or not module.CASES:
        return
    parts = ", ".join(f"{kind} {n}" for kind, n in sorted(module.CASES.items()))
    total = sum(module.CASES.values())
    terminalreporter.write_line(f"bad input: {total} generated cases ({parts})")
    if module.OUTCOMES:
        ends = ", ".join(f"{what} {n}" for what, n in sorted(module.OUTCOMES.items()))
        terminalreporter.write_line(f"bad input outcomes: {ends}")
