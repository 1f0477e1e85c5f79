"""Bad input, property-based: the spawn options form and the REST API's user_options.

JupyterHub hands the spawner the form body as ``{name: [value, ...]}`` (each value decoded
from the POST body) and the REST API's ``user_options`` as whatever JSON the client sent. A
person can forge either. Whatever arrives, the spawner must start an allowed image or refuse
with a SpawnException (403, one clear sentence), never a KeyError/IndexError/traceback, and
never run an image outside the allow-list.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from bad_input import (
    OptionValues,
    any_char,
    as_a_browser_sends,
    assert_clear_error,
    count,
    examples,
)
from hypothesis import example, given
from hypothesis import strategies as st
from traitlets.config import Config

from berth.spawner import ContainerSpawner, images
from berth.spawner.errors import SpawnException

DEFAULT = "berth/base-notebook:latest"

image_refs = st.one_of(
    st.sampled_from(
        [DEFAULT, "berth/scipy-notebook:latest", "r:1", "quay.io/jupyter/r-notebook:2024-01-01"]
    ),
    st.from_regex(r"\A[a-z0-9]{1,8}(/[a-z0-9]{1,8})?(:[a-z0-9.]{1,8})?\Z"),
)
display_names = st.one_of(
    st.sampled_from(["Python", "R", 'Python <3> & "friends"', "Ünïcode", "a b", "x:1"]),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=20),
)
# The operator's allow-list, as normalize_allowed gives it to choose_image.
allow_lists = st.one_of(
    st.just({}),
    st.lists(image_refs, max_size=4, unique=True).map(images.normalize_allowed),
    st.dictionaries(display_names, image_refs, max_size=4),
)


@st.composite
def forged_values(draw: st.DrawFn, allowed: dict[str, str]) -> str:
    """What a person might send as the image: real choices, look-alikes, and junk."""
    real = [*allowed, *allowed.values(), DEFAULT]
    base = draw(st.sampled_from(real))
    return draw(
        st.one_of(
            st.just(base),
            st.sampled_from([f" {base}", f"{base} ", base.upper(), f"{base}\n", f"{base}\x00"]),
            st.sampled_from(["evil:latest", "berth/hub:latest", "docker.io/library/ubuntu", ""]),
            st.text(any_char, max_size=30),
            st.builds(lambda n: base * n, st.integers(1000, 20000)),  # huge values
            st.just("\ud800"),
        )
    )


@st.composite
def form_bodies(draw: st.DrawFn, allowed: dict[str, str]) -> dict[str, list[str]]:
    """A POST body as JupyterHub's spawn page decodes it: every key maps to a list."""
    body: dict[str, list[str]] = {}
    how = draw(st.sampled_from(["one", "none", "empty list", "several", "other keys"]))
    if how == "one":
        body["image"] = [draw(forged_values(allowed))]
    elif how == "empty list":
        body["image"] = []
    elif how == "several":
        body["image"] = draw(st.lists(forged_values(allowed), min_size=2, max_size=4))
    if how == "other keys" or draw(st.booleans()):
        extra = draw(st.dictionaries(st.text(max_size=10), st.lists(st.text(max_size=10))))
        body.update({k: v for k, v in extra.items() if k != "image"})
    return body


def check_choice(default: str, allowed: dict[str, str], requested: object) -> str | None:
    """choose_image's contract: an allowed image, or a clear 403; returns the image or None."""
    choices = dict(allowed) or {default: default}
    try:
        chosen = images.choose_image(default, allowed, requested)
    except SpawnException as exc:
        assert exc.status_code == 403
        assert exc.reason == "image-not-allowed"
        assert_clear_error(exc.message)
        assert "\n" not in exc.message
        # The refusal names the choices; what was sent is shown, but never at length.
        assert len(exc.message) <= 300 + len(", ".join(choices)), len(exc.message)
        return None
    assert chosen in choices.values(), (chosen, allowed)
    return chosen


@st.composite
def allowed_and_form(draw: st.DrawFn):
    allowed = draw(allow_lists)
    default = draw(st.one_of(st.just(DEFAULT), st.sampled_from([*allowed.values(), DEFAULT])))
    return default, allowed, draw(form_bodies(allowed))


@examples(400)
@given(allowed_and_form())
@example((DEFAULT, {"A": "a:1"}, {"image": ["A" * 20000]}))  # the whole value was echoed
@example((DEFAULT, {"A": "a:1"}, {"image": ["a:1\x00"]}))
@example((DEFAULT, {}, {"image": []}))
@example((DEFAULT, {"A": "a:1", "B": "b:1"}, {"imagex": ["b:1"]}))
def test_form_bodies_give_an_allowed_image_or_a_clear_refusal(case) -> None:
    count("options forms")
    default, allowed, body = case
    options = images.options_from_form(body)
    assert set(options) <= {"image"}
    chosen = check_choice(default, allowed, options.get("image"))
    sent = body.get("image") or []
    if chosen is not None and sent and sent[0]:
        # What was sent is what was chosen: a display name or the image itself, exactly.
        assert sent[0] == chosen or allowed.get(sent[0]) == chosen
    elif chosen is not None:  # no choice (or an empty one): the default, if it is allowed
        assert chosen == default or default not in (allowed or {default: default}).values()


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(any_char, max_size=20),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@examples(300)
@given(allow_lists, st.one_of(json_values, st.lists(st.text(max_size=10), min_size=1, max_size=1)))
@example({"A": "a:1"}, ["A"])
@example({"A": "a:1"}, [["A"]])
@example({"A": "a:1"}, {"A": "a:1"})
@example({"A": "a:1"}, float("nan"))
@example({}, [DEFAULT, DEFAULT])
def test_rest_api_user_options_give_an_allowed_image_or_a_clear_refusal(allowed, image) -> None:
    """POST /users/NAME/server with {"image": <any JSON>}: the same contract as the form."""
    count("user_options")
    check_choice(DEFAULT, allowed, image)


# --- the form page itself: every offered choice must come back as that choice --------------


@examples(250)
@given(st.dictionaries(display_names, image_refs, min_size=2, max_size=5), st.data())
@example({'"><script>alert(1)</script>': "a:1", "R": "r:1"}, None)
def test_every_offered_choice_comes_back_as_that_choice(allowed, data) -> None:
    count("options forms")
    default = data.draw(st.sampled_from(list(allowed.values()))) if data else "r:1"
    form = images.options_form_html(allowed, default)
    parser = OptionValues()
    parser.feed(form)
    assert parser.values == list(allowed)  # no markup escaped its attribute
    assert "<script>" not in form
    for display in parser.values:
        options = images.options_from_form({"image": [as_a_browser_sends(display)]})
        assert images.choose_image(default, allowed, options["image"]) == allowed[display]


# --- the real spawner: start() refuses before touching the engine --------------------------


def make_spawner(allowed) -> ContainerSpawner:
    c = Config()
    c.ContainerSpawner.allowed_images = allowed
    c.ContainerSpawner.docker_url = "unix:///nonexistent/berth-fuzz.sock"
    hub = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api", base_url="/hub/")
    user = SimpleNamespace(name="alice", url="/user/alice/", escaped_name="alice")
    orm_spawner = SimpleNamespace(name="", display_name="", server=None)
    return ContainerSpawner(config=c, user=user, hub=hub, orm_spawner=orm_spawner)


@examples(60)
@given(allowed_and_form())
def test_spawner_start_refuses_forged_images_before_the_engine(case) -> None:
    """Through ContainerSpawner.run_options_from_form and start(): a forged image is a 403;
    an allowed one gets as far as the (absent) engine, which is a clear 503."""
    count("options forms")
    default, allowed, body = case
    sp = make_spawner(allowed)
    sp.image = default
    sp.user_options = asyncio.run(_maybe(sp.run_options_from_form(body)))
    try:
        asyncio.run(sp.start())
    except SpawnException as exc:
        assert exc.status_code in (403, 503), exc.message
        assert_clear_error(exc.message)
        expected = check_choice(default, allowed, sp.user_options.get("image"))
        assert (exc.status_code == 503) == (expected is not None)
    else:
        raise AssertionError("started without an engine")


async def _maybe(value):
    return await value if asyncio.iscoroutine(value) else value
