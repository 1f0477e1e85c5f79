"""berth.names: Docker-safe, injective escaping of user and server names."""

from __future__ import annotations

import random
import string

import pytest
from name_decoder import container_name, unescape

from berth import names
from berth.config import ConfigError, config_from_data
from berth.names import DOCKER_NAME_RE, escape

TEMPLATE = "{prefix}-{username}{server_suffix}"


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("alice", "alice"),
        ("Alice", "-41lice"),
        ("a.b", "a-2eb"),
        ("a-b", "a-2db"),
        ("a_b", "a-5fb"),
        ("zoë", "zo-c3-ab"),
        ("", ""),
        ("-", "-2d"),
        ("用户", "-e7-94-a8-e6-88-b7"),
    ],
)
def test_escape_examples(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped
    assert unescape(escaped) == raw


@pytest.mark.parametrize(
    ("a", "b"),
    [("a.b", "a-b"), ("Alice", "alice"), ("a_b", "a-b"), ("a-2eb", "a.b"), ("zoë", "zoe")],
)
def test_lookalikes_do_not_collide(a: str, b: str) -> None:
    assert escape(a) != escape(b)
    assert container_name(TEMPLATE, "berth", a) != container_name(TEMPLATE, "berth", b)


def test_default_and_named_servers() -> None:
    assert container_name(TEMPLATE, "berth", "alice") == "berth-alice"
    assert container_name(TEMPLATE, "berth", "alice", "gpu") == "berth-alice_gpu"
    # a user literally called "alice_gpu" gets another name than alice's server "gpu"
    assert container_name(TEMPLATE, "berth", "alice_gpu") == "berth-alice-5fgpu"
    # "a" + server "b-c" vs. "a-b" + server "c": the separator cannot be forged
    assert container_name(TEMPLATE, "berth", "a", "b-c") != container_name(
        TEMPLATE, "berth", "a-b", "c"
    )
    assert container_name(TEMPLATE, "berth", "a", "b_c") != container_name(
        TEMPLATE, "berth", "a_b", "c"
    )


def test_escaped_output_never_contains_separators() -> None:
    everything = "".join(chr(c) for c in range(1, 0x250)) + "_.-"
    out = escape(everything)
    assert "_" not in out and "." not in out
    assert set(out) <= set(string.ascii_lowercase + string.digits + "-")


@pytest.mark.parametrize("bad", ["-61", "A", "a-", "a-4", "a-zz", "-c3", "a_b"])
def test_unescape_rejects_what_escape_cannot_produce(bad: str) -> None:
    with pytest.raises(ValueError):
        unescape(bad)


def test_invalid_names_are_refused() -> None:
    with pytest.raises(names.InvalidNameError):
        container_name("{username}", "berth", "Alice")  # would start with "-"
    with pytest.raises(names.InvalidNameError):
        container_name("{prefix}-{nope}", "berth", "alice")
    with pytest.raises(names.InvalidNameError):
        container_name(TEMPLATE, "berth", "a" * 300)


def _random_name(rng: random.Random) -> str:
    alphabet = string.ascii_letters + string.digits + "-_.@+ " + "éüßøλ用户🙂"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))


def test_property_no_collisions_over_generated_names() -> None:
    """Many random (user, server) pairs, biased to look-alikes: distinct pairs, distinct names."""
    rng = random.Random(20240611)
    seen: dict[str, tuple[str, str]] = {}
    pairs = set()
    for _ in range(20000):
        user = _random_name(rng)
        server = _random_name(rng) if rng.random() < 0.5 else ""
        pairs.add((user, server))
    # add systematic look-alikes built from separators and case
    for user in ["a", "A", "a_", "a-", "a.", "a_b", "a-b", "a.b"]:
        for server in ["", "b", "B", "_b", "-b", "b_c"]:
            pairs.add((user, server))
    for user, server in pairs:
        name = container_name(TEMPLATE, "berth", user, server)
        assert DOCKER_NAME_RE.match(name), name
        assert seen.setdefault(name, (user, server)) == (user, server), name
        assert unescape(escape(user)) == user
    assert len(seen) == len(pairs)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("ab", True), ("a", False), ("-ab", False), ("a b", False), ("a" * 255, True),
     ("a" * 256, False), ("x.y_z-1", True)],
)  # fmt: skip
def test_one_docker_name_rule_for_config_and_spawner(name: str, valid: bool) -> None:
    """berth.yaml's names and the spawner's rendered names pass the same check (Docker refuses
    one-character names: the spawner used to let them through to the engine)."""
    spawner_ok = config_ok = True
    try:
        names.check_docker_name(name, "volume")
    except names.InvalidNameError:
        spawner_ok = False
    try:
        config_from_data({"network": name})
    except ConfigError:
        config_ok = False
    assert (spawner_ok, config_ok) == (valid, valid)
