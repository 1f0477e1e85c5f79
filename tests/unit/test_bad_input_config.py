"""Bad input, property-based: whole berth.yaml files through the real loader and translator.

Files are built from the schema's own keys (berth.config.keys), with good values, wrong
types, unknown keys and near-miss names, then dumped as YAML and sometimes mangled as text:
anchors and aliases (recursive ones too), tags, duplicate keys, huge numbers, non-mapping
roots, empty files, control characters, bad encodings. Each file must either load into a
BerthConfig that the translator turns into a jupyterhub_config.py and the spawner into a
valid container spec, or be refused with a ConfigError whose every line names the file,
without Python noise, and without any secret in it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from bad_input import (
    as_a_browser_sends,
    assert_clear_error,
    count,
    examples,
    option_values,
    outcome,
)
from berth_yaml_files import GOOD, LAUGHS, SECRET, TOKEN, UNSENDABLE_CHOICE, files, section
from hypothesis import example, given
from hypothesis import strategies as st
from traitlets.config import Config

from berth import names
from berth.config import (
    BerthConfig,
    ConfigError,
    hub_secret_files,
    load_config,
    render_config_py,
    to_jupyterhub_config,
)
from berth.config.keys import key_paths, model_in
from berth.spawner import ContainerSpawner, images, specs

DOCKER_INT_MAX = 2**63 - 1  # the engine's API keeps sizes in int64

# --- the files a berth.yaml may point at ----------------------------------------------------

USERLIST = "alice admin\nbob\n# a comment\n"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("berth-yaml")
    (base / "cert.pem").write_text("-----BEGIN CERTIFICATE-----\nnot really\n")
    (base / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot really\n")
    (base / "adir").mkdir()
    (base / "userlist").write_text(USERLIST)
    secret_files = {
        "oauth.env": f"GITHUB_CLIENT_ID=abc\nGITHUB_CLIENT_SECRET={SECRET}\n"
        f"OAUTH_CLIENT_ID=berth\nOAUTH_CLIENT_SECRET={SECRET}\n",
        "oauth-open.env": f"GITHUB_CLIENT_SECRET={SECRET}\n",
        "token": TOKEN + "\n",
        "open.token": TOKEN + "\n",
    }
    for name, text in secret_files.items():
        (base / name).write_text(text)
        os.chmod(base / name, 0o644 if "open" in name else 0o600)
    return base


ENVIRONS = st.sampled_from(
    [
        {},
        {"GITHUB_CLIENT_ID": "abc", "GITHUB_CLIENT_SECRET": SECRET},
        {"OAUTH_CLIENT_ID": "berth", "OAUTH_CLIENT_SECRET": SECRET, "OAUTH_CALLBACK_URL": "x"},
    ]
)


def load(workdir: Path, data: bytes, environ: dict[str, str]) -> BerthConfig:
    path = workdir / "berth.yaml"
    path.write_bytes(data)
    return load_config(path, environ=environ)


@examples(500)
@given(files(), ENVIRONS)
@example(b"services: &a [*a]\n", {})  # a recursive alias: RecursionError
@example(("x: " + "[" * 5000 + "]" * 5000 + "\n").encode(), {})  # deep nesting: RecursionError
@example(b"listen: {port: " + b"9" * 5000 + b"}\n", {})  # int() refuses 5000 digits
@example(b"network: a\x00b\n", {})  # PyYAML's ReaderError: two lines, "<unicode string>"
@example(b"'[/x]': 1\n", {})  # a key with "[" was taken for a union member: IndexError
@example(b"2001-01-01: x\n", {})  # "got datetime.date(2001, 1, 1)"
@example(b"limits: {memory: '" + b"9" * 400 + b"G'}\n", {})  # OverflowError
@example(b"limits: {memory: " + b"9" * 40 + b"}\n", {})  # accepted; Docker's int64 overflows
@example(b"limits: {cpu: 1e300}\n", {})  # accepted; nano_cpus overflowed in the spawner
@example(b'users: {allowed: ["\\ud800"]}\n', {})  # a lone surrogate, accepted as a user
@example(UNSENDABLE_CHOICE.encode(), {})  # accepted, but choosing it was a 403
@example(LAUGHS.encode(), {})  # a billion laughs: 9**7 paths walked
@example(b"network: &n berth\nhub: {data_volume: *n}\n", {})
@example(b"network: 2001-02-30\n", {})  # the date constructor raised ValueError
def test_berth_yaml_loads_or_is_refused_clearly(workdir: Path, data: bytes, environ) -> None:
    count("berth.yaml files")
    path = workdir / "berth.yaml"
    try:
        cfg = load(workdir, data, environ)
    except ConfigError as exc:
        outcome("berth.yaml refused")
        message = str(exc)
        assert_clear_error(message, lines_start_with=str(path))
        assert SECRET not in message, message
        assert len(message.splitlines()) <= 9
        return
    outcome("berth.yaml accepted")
    check_accepted(cfg)


def check_accepted(cfg: BerthConfig) -> None:
    """An accepted config works downstream: translation, rendering, and a spawn spec."""
    config = to_jupyterhub_config(cfg)
    rendered = render_config_py(config)
    compile(rendered, "jupyterhub_config.py", "exec")  # valid Python, whatever the values
    assert SECRET not in rendered  # secrets travel in files, never in the config
    hub_secret_files(cfg)
    rendered.encode("utf-8")  # written as UTF-8: no lone surrogates from "\ud800" escapes

    spawner_config = Config()
    for key, value in config["ContainerSpawner"].items():
        setattr(spawner_config.ContainerSpawner, key, value)
    for key in ("mem_limit", "cpu_limit"):
        if key in config["Spawner"]:
            setattr(spawner_config.ContainerSpawner, key, config["Spawner"][key])
    for user in ["alice", *cfg.users.admins[:2], *cfg.users.allowed[:2]]:
        spec = spawn_spec(spawner_config, user)
        kwargs = specs.container_create_kwargs(spec)
        host = kwargs["host_config"]
        assert host.get("mem_limit", 0) <= DOCKER_INT_MAX
        assert host.get("nano_cpus", 0) <= DOCKER_INT_MAX
        (volume,) = host["binds"]
        names.check_docker_name(volume, "volume")


def spawn_spec(config: Config, user: str) -> specs.ContainerSpec:
    hub = SimpleNamespace(public_host="", api_url="http://127.0.0.1:8081/hub/api", base_url="/hub/")
    owner = SimpleNamespace(name=user, url=f"/user/{user}/", escaped_name=user)
    orm_spawner = SimpleNamespace(name="", display_name="", server=None)
    sp = ContainerSpawner(config=config, user=owner, hub=hub, orm_spawner=orm_spawner)
    allowed = images.normalize_allowed(sp.allowed_images)
    image = images.choose_image(sp.image, allowed, None)
    # Every choice the form offers comes back, through a browser, as that choice.
    offered = option_values(images.options_form_html(allowed, sp.image))
    assert offered == (list(allowed) if len(allowed) > 1 else [])
    for display in offered:
        sent = as_a_browser_sends(display)
        assert images.choose_image(sp.image, allowed, [sent]) == allowed[display], display
    return asyncio.run(sp._build_spec(image))


def test_every_key_has_good_values() -> None:
    """The generator's GOOD table names exactly the schema's leaf keys: a key added to the
    schema without values here would only ever be generated with wrong ones."""
    leaves = {path for path, field in key_paths() if model_in(field.annotation) is None}
    assert set(GOOD) == leaves


def test_the_generator_reaches_acceptance(workdir: Path) -> None:
    """Sanity for the property above: files without wrong values must mostly load, or the
    downstream checks of accepted configs would rarely run. (400 files, not 40: the draws are
    derandomized per schema, and with 40 a new section moved the count from above the bar to
    10 without adding a single refusal of its own. With the cross-checks of `tls.acme`,
    `system_users` and `egress`, 200 files gave about 41-44 accepted; hence 400.)"""
    outcomes = {"accepted": 0, "refused": 0}

    @examples(400)
    @given(section(BerthConfig, "", 0))
    def probe(document: dict) -> None:
        try:
            load(workdir, yaml.safe_dump(document).encode(), {})
            outcomes["accepted"] += 1
        except ConfigError:
            outcomes["refused"] += 1

    probe()
    assert outcomes["accepted"] >= 60, outcomes
