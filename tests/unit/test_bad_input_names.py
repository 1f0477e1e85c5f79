"""Bad input, property-based: user and server names -> escaping, templates, container specs.

JupyterHub user and server names are arbitrary text (REST API, OAuth claims, URLs); these
properties push every kind of text through berth.names and the spawner's pure spec builders
and check that each name gives a valid, distinct Docker name or one clear refusal.
"""

from __future__ import annotations

import asyncio
import string
from types import SimpleNamespace

from bad_input import any_char, count, examples
from bad_input import names as name_text
from hypothesis import assume, example, given
from hypothesis import strategies as st
from name_decoder import container_name, unescape
from traitlets.config import Config

from berth import names, sizes
from berth.config.schema import StorageConfig
from berth.spawner import ContainerSpawner, specs, volumes
from berth.spawner.errors import SpawnException

DEFAULT_TEMPLATE = "{prefix}-{username}{server_suffix}"
DEFAULT_VOLUME = StorageConfig().volume_name_template
ESCAPED_ALPHABET = set(string.ascii_lowercase + string.digits + "-")


def valid_docker_name(name: str) -> bool:
    return (
        name[:1].isascii()
        and name[:1].isalnum()
        and all(ch.isascii() and (ch.isalnum() or ch in "_.-") for ch in name)
        and len(name) <= names.MAX_NAME_LENGTH
    )


@examples(300)
@given(name_text)
@example("\ud800")  # a lone surrogate (JSON "\ud800", argv bytes): escape() raised
@example("\udcff")
@example("\ud83d\ude00")  # a surrogate pair as two code points, not the emoji itself
@example("\U0001f600")
def test_escape_is_reversible_and_docker_safe(name: str) -> None:
    count("names")
    escaped = names.escape(name)
    assert set(escaped) <= ESCAPED_ALPHABET
    assert unescape(escaped) == name


@examples(200)
@given(name_text, name_text)
@example("\ud83d\ude00", "\U0001f600")
@example("Alice", "alice")
@example("a.b", "a-2eb")
def test_different_names_never_share_an_escape(a: str, b: str) -> None:
    count("names")
    assume(a != b)
    assert names.escape(a) != names.escape(b)
    assert names.escape(a).lower() != names.escape(b).lower()  # DNS ignores case


@examples(200)
@given(st.text(st.sampled_from("abf09-_.A"), max_size=12))
def test_unescape_refuses_what_escape_cannot_produce(text: str) -> None:
    count("names")
    try:
        decoded = unescape(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert names.escape(decoded) == text


def pairs_that_try_to_collide() -> st.SearchStrategy[tuple[tuple[str, str], tuple[str, str]]]:
    """Two (user, server) pairs; the second often re-splits the first's characters."""

    @st.composite
    def build(draw: st.DrawFn) -> tuple[tuple[str, str], tuple[str, str]]:
        user, server = draw(name_text), draw(st.one_of(st.just(""), name_text))
        joined = user + server
        how = draw(st.sampled_from(["resplit", "separator", "case", "independent"]))
        if how == "resplit" and joined:
            cut = draw(st.integers(0, len(joined)))
            other = (joined[:cut], joined[cut:])
        elif how == "separator":
            sep = draw(st.sampled_from(["_", ".", "-", "-5f", "_-", ""]))
            other = (f"{user}{sep}{server}", "") if server else (user, sep)
        elif how == "case":
            other = (user.swapcase(), server.swapcase())
        else:
            other = (draw(name_text), draw(st.one_of(st.just(""), name_text)))
        return (user, server), other

    return build()


@examples(400)
@given(pairs_that_try_to_collide())
@example((("a", "b-c"), ("a-b", "c")))
@example((("alice", "gpu"), ("alice_gpu", "")))
@example((("a", "2eb."), ("a.b", "2e")))
def test_default_container_names_are_valid_and_distinct(pairs) -> None:
    count("names")
    (user_a, server_a), (user_b, server_b) = pairs
    rendered = []
    for user, server in pairs:
        try:
            rendered.append(container_name(DEFAULT_TEMPLATE, "berth", user, server))
        except names.InvalidNameError as exc:
            # The only refusal the default template can give: a name too long for Docker.
            assert "longer than" in str(exc)
            assert (
                len(names.render(DEFAULT_TEMPLATE, names.template_namespace("berth", user, server)))
                > names.MAX_NAME_LENGTH
            )
            return
    for name in rendered:
        assert valid_docker_name(name), name
    if (user_a, server_a) != (user_b, server_b):
        assert rendered[0].lower() != rendered[1].lower()


# --- volume name templates: the config check and the spawner's rendering -------------------

template_parts = st.sampled_from(
    [
        "{username}",
        "{servername}",
        "{server_suffix}",
        "{prefix}",
        "berth",
        "-",
        "_",
        ".",
        "user",
        "{username:.3}",
        "{username!r}",
        "{username[0]}",
        "{0}",
        "{}",
        "{",
        "}",
        "{nope}",
        "é",
        " ",
        "/",
        "x" * 40,
    ]
)
templates = st.lists(template_parts, max_size=6).map("".join)


@examples(400)
@given(templates, pairs_that_try_to_collide())
@example("{username:.3}", (("alice", ""), ("alicia", "")))  # truncation: one volume for both
@example("berth-{username}{servername}", (("a", "bc"), ("ab", "c")))
@example("berth-{username}-{servername}", (("a", "2eb."), ("a.b", "2e")))
@example("berth-{username}\n", (("a", ""), ("b", "")))
@example("{username}", (("Alice", ""), ("bob", "")))  # "-41lice": Docker refuses it
def test_accepted_volume_templates_give_each_user_their_own_volume(template, pairs) -> None:
    """Whatever template berth.yaml accepts, different users never mount one volume.

    (A colliding template would mount one user's files into another user's server: the
    spawner mounts an existing volume as it finds it.)
    """
    count("volume templates")
    try:
        StorageConfig(volume_name_template=template)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        assert "volume_name_template" in str(exc)
        return
    assume(all(user for user, _ in pairs))  # JupyterHub has no user without a name
    rendered = []
    for user, server in pairs:
        namespace = names.template_namespace("berth", user, server)
        try:
            rendered.append(names.check_docker_name(names.render(template, namespace), "volume"))
        except names.InvalidNameError as exc:
            assert "longer than" in str(exc)  # the only possible refusal: too long
            return
    for name in rendered:
        assert valid_docker_name(name), name
    (user_a, server_a), (user_b, server_b) = pairs
    uses_server = any(f in template for f in ("{servername}", "{server_suffix}"))
    if user_a != user_b or (uses_server and server_a != server_b):
        assert rendered[0] != rendered[1], (template, pairs)


# --- the spawner's spec for a user: container, volume, labels ------------------------------


def make_spawner(user: str, server: str, **config) -> ContainerSpawner:
    c = Config()
    for key, value in config.items():
        setattr(c.ContainerSpawner, key, value)
    hub = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api", base_url="/hub/")
    owner = SimpleNamespace(name=user, url=f"/user/{user}/", escaped_name=user)
    orm_spawner = SimpleNamespace(name=server, display_name=server, server=None)
    return ContainerSpawner(config=c, user=owner, hub=hub, orm_spawner=orm_spawner)


def encodable(text: str) -> bool:
    return not any("\ud800" <= ch <= "\udfff" for ch in text)


# JupyterHub itself cannot hold a name with a lone surrogate (its URLs and environment fail
# first), so the spawner never sees one; berth.names handles them anyway (tested above).
hub_names = name_text.filter(encodable)


@examples(250)
@given(hub_names, st.one_of(st.just(""), hub_names))
@example("a" * 300, "")
@example("Alice", "gpu")
def test_spawner_spec_for_any_user(user: str, server: str) -> None:
    """ContainerSpawner's own spec builder: valid names and labels, or a clear config error."""
    count("spawner specs")
    sp = make_spawner(user, server, volumes={DEFAULT_VOLUME: "/home/jovyan/work"})
    try:
        spec = asyncio.run(sp._build_spec("berth/base-notebook:latest"))
    except SpawnException as exc:
        assert exc.reason == "config" and "longer than" in exc.message
        return
    kwargs = specs.container_create_kwargs(spec)
    assert valid_docker_name(kwargs["name"])
    assert kwargs["name"] == container_name(DEFAULT_TEMPLATE, "berth", user, server)
    assert kwargs["labels"]["berth.user"] == user
    assert kwargs["labels"]["berth.server"] == server
    (volume,) = kwargs["host_config"]["binds"]
    assert valid_docker_name(volume)
    assert volume == names.render(DEFAULT_VOLUME, names.template_namespace("berth", user, server))
    created = volumes.volume_create_kwargs(volume, spec.identity)
    assert created["labels"]["berth.user"] == user


# --- byte sizes the spawner parses (mem_guarantee, callables' results) ---------------------


@examples(250)
@given(
    st.one_of(
        st.from_regex(r"\A\s?[0-9]{1,400}(\.[0-9]{1,5})?\s?[KMGTkmgtx]?i?[Bb]?\Z"),
        st.text(any_char, max_size=12),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
    )
)
@example("9" * 400 + "G")  # float overflow: int(inf) raised OverflowError, not ValueError
@example("1" + "0" * 320)
def test_spawner_byte_sizes_parse_or_refuse(value) -> None:
    count("byte sizes")
    try:
        parsed = sizes.parse_bytes(value)
    except ValueError as exc:
        assert "expected an integer number of bytes" in str(exc) or "byte size" in str(exc)
        return
    assert isinstance(parsed, int)


def test_pair_strategy_covers_resplits() -> None:
    """The collision hunt above is only meaningful if it re-splits names; check it does."""
    seen = set()

    @examples(50)
    @given(pairs_that_try_to_collide())
    def probe(pairs) -> None:
        (a, b), (c, d) = pairs
        if a + b == c + d and (a, b) != (c, d):
            seen.add("resplit")

    probe()
    assert seen == {"resplit"}
