"""The test tree itself: pytest imports test modules by basename (rootdir-relative, no packages),
so two files with the same name in tests/unit and tests/integration stop the whole run at
collection. This catches it in the unit tier, seconds into a run, instead."""

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_module_names_are_unique_across_the_tree() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
