"""Which of docker-stacks' foundation tests the conformance runner leaves out, per engine."""

from __future__ import annotations

from conformance.docker_stacks import DESELECTED, ENGINE_DESELECTED, NODES, deselection

from berth.engine_kind import DOCKER, ENGINES, PODMAN


def test_podman_leaves_out_only_test_group_add_beyond_the_common_list() -> None:
    group_add = f"{NODES}/test_user_options.py::test_group_add"
    assert deselection(DOCKER) == DESELECTED
    assert deselection(PODMAN) == {**DESELECTED, group_add: ENGINE_DESELECTED[PODMAN][group_add]}
    assert set(ENGINE_DESELECTED) <= set(ENGINES)
    assert not set(DESELECTED) & set(ENGINE_DESELECTED[PODMAN])
