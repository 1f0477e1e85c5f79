"""tests/engine_support.py: which tests are Docker's alone, by module or one by one.

The entries name modules and tests by hand, so a renamed test would quietly run on Podman
again (and fail there): every entry must name a module and a test that exist."""

from __future__ import annotations

import ast
from pathlib import Path

from engine_support import DOCKER_ONLY, DOCKERD_RESTART, SWARM, docker_only_reason

TESTS = Path(__file__).resolve().parents[1]


def test_a_module_entry_covers_each_of_its_tests() -> None:
    ids = [
        "tests/integration/test_swarm_up.py::test_anything",
        "tests/integration/test_swarm_up.py::TestX::test_y[param-1]",
        "test_swarm_up.py::test_z",  # pytest run from tests/integration
    ]
    assert [docker_only_reason(i) for i in ids] == [SWARM, SWARM, SWARM]


def test_a_test_entry_covers_that_test_and_its_parametrizations_only() -> None:
    deploy = "tests/integration/test_deploy_restarts.py::"
    name = deploy + "TestDeployment::test_servers_survive_a_dockerd_restart"
    others = [
        deploy + "TestDeployment::test_a_killed_hub_comes_back_with_berth_up",
        deploy + "test_servers_survive_a_dockerd_restart",  # not in the class
        "tests/integration/test_spawner_hub.py::test_anything",
    ]
    found = {nodeid: docker_only_reason(nodeid) for nodeid in [name, name + "[x]", *others]}
    assert found == {
        name: DOCKERD_RESTART,
        name + "[x]": DOCKERD_RESTART,
        **dict.fromkeys(others),
    }


def defined_tests(path: Path) -> set[str]:
    """The tests a module defines, as ``test`` or ``Class::test``."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef):
            found |= {
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
            }
    return found


def test_every_entry_names_a_module_and_a_test_that_exist() -> None:
    missing = []
    for entry in DOCKER_ONLY:
        module, _, test = entry.partition("::")
        paths = list(TESTS.glob(f"*/{module}.py"))
        if len(paths) != 1 or (test and test not in defined_tests(paths[0])):
            missing.append(entry)
    assert missing == []
