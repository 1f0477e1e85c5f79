"""berth snapshot's pure parts: image names, the committed config, and which snapshots the
spawner offers to whom."""

from __future__ import annotations

import pytest

from berth.deploy import snapshots
from berth.errors import BerthError
from berth.spawner import images


def test_image_names_keep_users_apart_and_are_valid_references() -> None:
    refs = {
        user: snapshots.image_ref("berth", user, "v1")
        for user in ("alice", "Alice", "a.b", "a-b", "zoë")
    }
    assert refs["alice"] == "berth-snapshot/berth/ualice:v1"
    assert refs["Alice"] == "berth-snapshot/berth/u-41lice:v1"
    assert snapshots.image_ref("other", "alice", "v1") == "berth-snapshot/other/ualice:v1"
    assert len(set(refs.values())) == len(refs)
    assert snapshots.REPOSITORY == images.SNAPSHOT_REPOSITORY


@pytest.mark.parametrize("name", ["", "-x", "A", "a/b", "a:b", "../x", "x" * 65, "é"])
def test_bad_snapshot_names_are_refused(name: str) -> None:
    with pytest.raises(BerthError, match="invalid snapshot name"):
        snapshots.check_name(name)


def test_the_committed_image_keeps_the_base_images_config_not_the_containers() -> None:
    """The container's environment holds the server's API token: never in the image."""
    base = {
        "Env": ["PATH=/opt/venv/bin:/usr/bin", "NB_USER=jovyan"],
        "Cmd": ["start-notebook.py"],
        "Entrypoint": ["tini", "-g", "--", "start.sh"],
        "User": "1000",
        "WorkingDir": "/home/jovyan",
        "Labels": {"berth.image": "base-notebook"},
        "Hostname": "abc",
    }
    labels = {"berth.snapshot.owner": "ada", "berth.snapshot.name": "v1"}
    container_env = ["PATH=/opt/venv/bin:/usr/bin", "JUPYTERHUB_API_TOKEN=secret", "MEM_LIMIT=2"]
    assert snapshots.commit_config(base, container_env, labels) == {
        "Env": [
            "PATH=/opt/venv/bin:/usr/bin",
            "NB_USER=jovyan",
            "JUPYTERHUB_API_TOKEN=",  # given empty, or the engine would copy the container's
            "MEM_LIMIT=",
        ],
        "Cmd": ["start-notebook.py"],
        "Entrypoint": ["tini", "-g", "--", "start.sh"],
        "User": "1000",
        "WorkingDir": "/home/jovyan",
        "Labels": {"berth.image": "base-notebook", **labels},
    }


def record(owner: str, name: str, taken: str, tags: list[str] | None = None) -> dict:
    return {
        "RepoTags": tags if tags is not None else [snapshots.image_ref("berth", owner, name)],
        "Labels": {
            "berth.snapshot.owner": owner,
            "berth.snapshot.name": name,
            "berth.snapshot.taken": taken,
        },
    }


def test_a_user_is_offered_their_own_snapshots_only_oldest_first() -> None:
    found = [
        record("ada", "later", "2026-11-27T10:00:00"),
        record("ada", "first", "2026-11-26T10:00:00"),
        record("bob", "his", "2026-11-26T11:00:00"),  # the engine's filter would drop it
        record("ada", "untagged", "2026-11-26T12:00:00", tags=[]),
        record("ada", "elsewhere", "2026-11-26T12:00:00", tags=["evil/app:latest"]),
    ]
    assert images.snapshot_choices(found, "ada") == {
        "Snapshot first": "berth-snapshot/berth/uada:first",
        "Snapshot later": "berth-snapshot/berth/uada:later",
    }
    assert images.snapshot_choices(found, "carol") == {}
