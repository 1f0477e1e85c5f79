"""Bad input, property-based: image references (berth.yaml images.*, `berth run IMAGE`).

berth.config.fields.check_image is the one validator for image names typed by people; an
image it accepts must be one the engine accepts too, and images.allowed must be refused
with one clear message or give the spawner an allow-list it can use.
"""

from __future__ import annotations

from bad_input import any_char, assert_clear_error, count, examples, outcome
from docker.utils import parse_repository_tag
from hypothesis import example, given
from hypothesis import strategies as st

from berth.config import ConfigError, config_from_data
from berth.config.fields import check_image
from berth.spawner import images

REPOSITORY_MAX = 255  # the engine's limit for a repository name (host and path)

reference_parts = st.sampled_from(
    [
        "berth",
        "base-notebook",
        "a",
        "A",
        "a_b",
        "a__b",
        "a.b",
        "a-b",
        "a--b",
        "_a",
        "a_",
        "..",
        "localhost:5000",
        "[::1]:5000",
        "registry.example.org",
        "x" * 100,
        "é",
        " ",
    ]
)
tags = st.sampled_from(
    ["", ":latest", ":1.0", ":_x", ":-x", ":" + "t" * 128, ":" + "t" * 129, ":", ":a b"]
)
digests = st.sampled_from(["", "@sha256:" + "0" * 64, "@sha256:abc", "@md5:" + "f" * 32, "@"])
references = st.one_of(
    st.builds(
        lambda parts, tag, digest: "/".join(parts) + tag + digest,
        st.lists(reference_parts, min_size=1, max_size=4),
        tags,
        digests,
    ),
    st.text(st.sampled_from("ab/:.-_@A0 "), max_size=30),
    st.text(any_char, max_size=12),
    st.from_regex(r"\A[a-z0-9]{1,40}(/[a-z0-9]{1,40}){0,8}\Z"),
)


@examples(400)
@given(references)
@example("a/" * 130 + "a")  # 261 characters: the engine refuses names over 255
@example("berth/base-notebook:latest\n")
@example("Berth/base-notebook")  # the registry host "Berth", path "base-notebook"
def test_accepted_images_are_references_the_engine_takes(reference: str) -> None:
    count("image names")
    try:
        checked = check_image(reference)
    except ValueError as exc:
        outcome("image refused")
        assert_clear_error(str(exc))
        assert "\n" not in str(exc)
        return
    outcome("image accepted")
    assert checked == reference.strip()
    assert checked.isascii() and checked.isprintable() and " " not in checked
    repository, tag = parse_repository_tag(checked)
    if "@" in checked:  # docker-py splits a digest off as the "tag"
        assert checked == f"{repository}@{tag}"
    else:
        assert checked == (f"{repository}:{tag}" if tag else repository)
    name = repository.rsplit("@", 1)[0]
    path = name.split("/", 1)[1] if "/" in name and _has_host(name) else name
    assert path == path.lower(), checked
    assert len(name) <= REPOSITORY_MAX, checked


def _has_host(name: str) -> bool:
    """Docker's rule: the first component is a registry host if it has "." or ":", is
    "localhost", or has upper case ("Berth/x" names the registry "Berth")."""
    first = name.split("/", 1)[0]
    return any(c in first for c in ".:[") or first == "localhost" or first != first.lower()


GOOD_IMAGES = ["berth/base-notebook:latest", "berth/scipy-notebook:latest", "r:1", "a/b"]
allowed_values = st.one_of(
    st.lists(st.sampled_from(GOOD_IMAGES), max_size=3, unique=True),
    st.dictionaries(st.sampled_from(["Base", "SciPy", "R <3>"]), st.sampled_from(GOOD_IMAGES)),
    st.lists(st.one_of(references, st.integers(), st.none()), max_size=4),
    st.dictionaries(
        st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.none()),
        st.one_of(references, st.none(), st.lists(references, max_size=1)),
        max_size=4,
    ),
    references,
    st.none(),
)


@examples(300)
@given(st.one_of(st.none(), st.sampled_from(GOOD_IMAGES), references), allowed_values)
@example("berth/base-notebook:latest", ["berth/base-notebook:latest"] * 2)
@example("a:1", {"A": "a:1", "B": "a:1"})
@example("a:1", {1: "a:1"})
def test_images_section_gives_a_usable_allow_list_or_one_clear_refusal(default, allowed) -> None:
    count("image names")
    section = {"allowed": allowed} if default is None else {"default": default, "allowed": allowed}
    try:
        cfg = config_from_data({"images": section}, file="berth.yaml")
    except ConfigError as exc:
        outcome("images section refused")
        assert_clear_error(str(exc), lines_start_with="berth.yaml")
        assert all(p.key_path.startswith("images") for p in exc.problems), str(exc)
        return
    outcome("images section accepted")
    choices = images.normalize_allowed(cfg.images.allowed)
    values = list(choices.values())
    assert all(check_image(image) == image for image in [cfg.images.default, *values])
    assert len(set(values)) == len(values)
    if values:
        assert cfg.images.default in values
    assert images.choose_image(cfg.images.default, choices, None) == cfg.images.default
