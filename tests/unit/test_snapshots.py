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


def record(owner: str, name: str, taken: str, tags: list[str] | None = None, **shared: str) -> dict:
    return {
        "RepoTags": tags if tags is not None else [snapshots.image_ref("berth", owner, name)],
        "Labels": {
            "berth.snapshot.owner": owner,
            "berth.snapshot.name": name,
            "berth.snapshot.taken": taken,
            **{f"berth.snapshot.shared.{key}": value for key, value in shared.items()},
        },
    }


def test_the_spawner_and_berth_snapshot_name_a_snapshot_alike() -> None:
    for user in ("ada", "Zoë", "a.b"):
        assert images.snapshot_tag("Berth", user, "v1") == snapshots.image_ref("Berth", user, "v1")


def test_a_user_is_offered_their_own_snapshots_only_oldest_first() -> None:
    found = [
        record("ada", "later", "2026-11-27T10:00:00"),
        record("ada", "first", "2026-11-26T10:00:00"),
        record("bob", "his", "2026-11-26T11:00:00"),  # the engine's filter would drop it
        record("ada", "untagged", "2026-11-26T12:00:00", tags=[]),
        record("ada", "elsewhere", "2026-11-26T12:00:00", tags=["evil/app:latest"]),
    ]
    assert images.snapshot_choices(found, "ada", "berth") == {
        "Snapshot first": "berth-snapshot/berth/uada:first",
        "Snapshot later": "berth-snapshot/berth/uada:later",
    }
    assert images.snapshot_choices(found, "carol", "berth") == {}


def test_a_snapshot_shared_with_a_user_is_offered_to_that_user_only() -> None:
    found = [
        record("ada", "v1", "2026-11-26T10:00:00", bob="bob"),
        record("ada", "v2", "2026-11-26T11:00:00", bob=""),  # unshared: the label stays, empty
        record("ada", "v3", "2026-11-26T12:00:00", carol="carol"),
        record("bob", "v1", "2026-11-26T13:00:00"),
    ]
    assert images.snapshot_choices(found, "bob", "berth") == {
        "Snapshot v1 from ada": "berth-snapshot/berth/uada:v1",
        "Snapshot v1": "berth-snapshot/berth/ubob:v1",
    }
    assert images.snapshot_choices(found, "carol", "berth") == {
        "Snapshot v3 from ada": "berth-snapshot/berth/uada:v3"
    }
    assert images.snapshot_choices(found, "dee", "berth") == {}


def test_crafted_snapshot_images_are_no_choice() -> None:
    """Labels and tags that do not match as `berth snapshot` makes them offer nothing: a share
    label whose key is another user's, an image labelled ada's but tagged as bob's (or in
    another deployment), a share label naming the user under another user's key."""
    found = [
        record("ada", "v1", "t", tags=[snapshots.image_ref("berth", "bob", "v1")]),
        record("ada", "v2", "t", tags=[snapshots.image_ref("other", "ada", "v2")]),
        record("ada", "v3", "t", carol="bob"),  # key of carol, value bob
        record("ada", "v4", "t", **{"-42ob": "bob"}),  # the key is how "Bob" is escaped
        {"RepoTags": ["berth-snapshot/berth/uada:v5"], "Labels": {"berth.snapshot.owner": "ada"}},
    ]
    assert images.snapshot_choices(found, "bob", "berth") == {}
    assert images.snapshot_choices(found, "Bob", "berth") == {}
    # choose_image accepts only what is offered, by display name or image
    with pytest.raises(Exception, match="image-not-allowed"):
        images.choose_image("berth/base-notebook", {}, snapshots.image_ref("berth", "ada", "v1"))


def snap(shared: tuple[str, ...] = ()) -> snapshots.Snapshot:
    return snapshots.Snapshot(
        snapshots.image_ref("berth", "ada", "v1"), "ada", "v1", "", "t", 1, shared
    )


def test_the_labels_that_share_a_snapshot_name_each_user_by_their_escaped_name() -> None:
    known = ["ada", "bob", "Zoë", "carol"]
    assert snapshots.share_changes(snap(), ["bob", "Zoë"], [], known) == {
        "berth.snapshot.shared.bob": "bob",
        "berth.snapshot.shared.-5ao-c3-ab": "Zoë",
    }
    assert snapshots.share_changes(snap(("bob",)), ["bob"], [], known) == {}  # shared already
    assert snapshots.share_changes(snap(("bob", "carol")), [], ["bob"], []) == {
        "berth.snapshot.shared.bob": ""
    }
    assert snapshots.shared_with(
        {
            "berth.snapshot.shared.bob": "bob",
            "berth.snapshot.shared.carol": "",  # unshared
            "berth.snapshot.shared.dee": "eve",  # hand-made: the key is not eve's
            "berth.snapshot.owner": "ada",
        }
    ) == ("bob",)


@pytest.mark.parametrize(
    ("add", "drop", "message"),
    [
        (["mallory"], [], "no user named 'mallory' on the hub"),
        (["Bob"], [], "no user named 'Bob'"),  # names are not folded
        (["ada"], [], "ada owns"),
        ([], ["carol"], "is not shared with 'carol'"),
    ],
)
def test_sharing_is_refused_for_unknown_users_the_owner_and_users_not_shared_with(
    add: list[str], drop: list[str], message: str
) -> None:
    with pytest.raises(BerthError, match=message):
        snapshots.share_changes(snap(("bob",)), add, drop, ["ada", "bob", "carol"])


def test_the_commit_changes_carry_the_config_both_engines_read_alike() -> None:
    """Podman 4.3 ignores the commit's body: the instructions carry the emptied token, the
    base image's settings and the labels; a value the engines parse differently stays out."""
    config = {
        "Env": ["PATH=/opt/venv/bin:/usr/bin", "JUPYTERHUB_API_TOKEN=", "ODD=a$b"],
        "Cmd": ["start-notebook.py", "--x=a b"],
        "Entrypoint": ["tini", "--"],
        "User": "1000",
        "WorkingDir": "/home/jovyan",
        "Labels": {"berth.snapshot.owner": "ada@example.org", "odd": 'say "hi"'},
    }
    assert snapshots.commit_changes(config) == [
        'ENV PATH="/opt/venv/bin:/usr/bin"',
        'ENV JUPYTERHUB_API_TOKEN=""',
        'ENTRYPOINT ["tini", "--"]',
        'CMD ["start-notebook.py", "--x=a b"]',
        "USER 1000",
        "WORKDIR /home/jovyan",
        'LABEL "berth.snapshot.owner"="ada@example.org"',
    ]
