"""Generated berth.yaml files for the bad-input tests (test_bad_input_config.py, and the
command line's in test_bad_input_cli.py): built from the schema's own keys
(berth.config.keys) with good values, wrong types, unknown keys and near-miss names, dumped as
YAML and sometimes mangled as text."""

from __future__ import annotations

import functools
from typing import Any

import yaml
from bad_input import (
    any_char,
)
from hypothesis import strategies as st
from pydantic import BaseModel

from berth.config import (
    BerthConfig,
)
from berth.config.keys import is_list_of_models, model_in

SECRET = "S3CRETPW"  # put into every secret a file may hold; no message may ever show it
TOKEN = f"{SECRET}0123456789abcdef"

# Good values per key path ("services[]." for every list item), as an operator writes them.
GOOD: dict[str, list[Any]] = {
    "version": [1],
    "listen.address": ["0.0.0.0", "127.0.0.1", "::", "::1"],
    "listen.port": [8443, 1, 65535, 443],
    "tls.cert": ["cert.pem", "missing.pem", "adir"],
    "tls.key": ["key.pem"],
    "tls.hostnames": [["hub.example.org", "10.0.0.1", "*.example.org"], []],
    "tls.acme.email": ["ops@example.org"],
    "tls.acme.hostnames": [["hub.example.org"], ["hub.example.org", "jupyter.example.org"]],
    "tls.acme.directory": ["https://acme-v02.api.letsencrypt.org/directory", "https://ca/dir"],
    "tls.acme.staging": [False, True],
    "tls.acme.directory_ca": ["cert.pem", "missing.pem"],
    "tls.acme.http_port": [80, 8080, 0],
    "tls.acme.challenge": ["auto", "tls-alpn-01", "http-01"],
    "images.default": ["berth/base-notebook:latest", "berth/scipy-notebook:latest"],
    "images.allowed": [
        ["berth/base-notebook:latest", "berth/scipy-notebook:latest"],
        {"Base": "berth/base-notebook:latest", "SciPy <3>": "berth/scipy-notebook:latest"},
        [],
    ],
    "images.pull_policy": ["ifnotpresent", "always", "never"],
    "storage.volume_name_template": [
        "berth-user-{username}{server_suffix}",
        "{prefix}-home-{username}{server_suffix}",
        "berth-user-{username}",
        "jupyterhub-user-{username}",
    ],
    "storage.mount_point": ["/home/jovyan/work", "/srv/work/"],
    "servers.named": [False, True],
    "servers.limit_per_user": [3, 0, 10],
    "snapshots.keep": [3, 0, 50],
    "limits.memory": ["2G", "512M", 1073741824, "1.5G", 0, None],
    "limits.cpu": [0.5, 2, 1.5, 0, None],
    "limits.pids": [1024, 64, 0, None],
    "auth.type": ["native", "github", "oidc"],
    "auth.native.enable_signup": [True, False],
    "auth.native.open_signup": [False, True],
    "auth.native.minimum_password_length": [8, 12],
    "auth.native.check_common_password": [True],
    "auth.native.allowed_failed_logins": [10, 0],
    "auth.native.seconds_before_next_try": [600],
    "auth.github.client_id": ["abc123"],
    "auth.github.client_secret": [SECRET],
    "auth.github.callback_url": ["https://hub.example.org/hub/oauth_callback"],
    "auth.github.env_file": ["oauth.env", "oauth-open.env", "missing.env"],
    "auth.github.allow_all": [True, False],
    "auth.github.allowed_organizations": [["my-org", "my-org:team"]],
    "auth.github.github_url": ["https://github.example.org", "http://10.0.0.2:3000"],
    "auth.github.allow_http": [True, False],
    "auth.oidc.client_id": ["berth"],
    "auth.oidc.client_secret": [SECRET],
    "auth.oidc.authorize_url": ["https://id.example.org/auth"],
    "auth.oidc.token_url": ["https://id.example.org/token"],
    "auth.oidc.userdata_url": ["https://id.example.org/userinfo", "http://id/userinfo"],
    "auth.oidc.allowed_groups": [["jupyter"]],
    "auth.oidc.admin_groups": [["admins"]],
    "auth.oidc.allow_http": [False, True],
    "auth.oidc.callback_url": ["https://hub.example.org/hub/oauth_callback"],
    "auth.oidc.env_file": ["oauth.env", "oauth-open.env"],
    "auth.oidc.allow_all": [False, True],
    "auth.oidc.username_claim": ["preferred_username", "email"],
    "auth.oidc.require_verified_email": [True, False],
    "auth.oidc.scope": [["openid", "profile", "email"], ["openid", "groups"]],
    "auth.oidc.login_service": ["Keycloak", "Sign <in> & 'go'"],
    "auth.oidc.groups_claim": ["groups"],
    "auth.oidc.validate_server_cert": [True, False],
    "users.allowed": [["bob", "Carol", "dave@example.org"], []],
    "users.admins": [["alice"], ["ALICE", "alice"]],
    "users.userlist_file": ["userlist", "missing-userlist"],
    "hub.db_url": [
        "sqlite:////srv/berth/data/jupyterhub.sqlite",
        f"postgresql://jupyterhub:{SECRET}@db.example.org:5432/jupyterhub",
        f"sqlite:///{SECRET}.sqlite",
        f"mysql://u:{SECRET}@h/db",
    ],
    "hub.data_volume": ["berth-hub-data"],
    "idle_culler.enabled": [True, False],
    "idle_culler.timeout": [3600, 0],
    "idle_culler.every": [300],
    "idle_culler.max_age": [0, 86400],
    "services[].name": ["provisioner", "idle-culler", "grader"],
    "services[].scopes": [["admin:users", "servers"], ["read:users!group=students"]],
    "services[].token": [TOKEN, SECRET],
    "services[].token_file": ["token", "open.token", "missing.token"],
    "network": ["berth", "berth-net"],
    "egress.mode": ["public", "none", "all"],
    "egress.allow": [[], ["10.1.2.0/24", "192.168.7.20"]],
    "backend": ["docker", "swarm", "system-users"],
    "system_users.trust_login_names": [True, False],
    "system_users.host_home": ["/home/{username}", "/srv/homes/u-{username}"],
    "system_users.image_home": ["/home/{username}", "/home/jovyan"],
    "system_users.min_uid": [1000, 500],
    "backup.enabled": [False, True],
    "backup.every": ["1d", "6h"],
    "backup.keep": [7, 1],
    "backup.volume": ["berth-backups"],
    "backup.directory": ["/srv/berth-backups"],
}

# Values of the wrong kind for almost any key.
WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**30), 2**63, 1e308, float("inf"), float("nan"), -0.0]),
    st.floats(),
    st.text(any_char, max_size=12),
    st.sampled_from(["", " ", "yes", "no", "0x1F", "1_000", "8443 ", "[/]", "{x}", "~"]),
    st.dates(),
    st.datetimes(),
    st.just(b"\x00binary"),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


PERCENT = st.integers(0, 99)


@functools.cache
def near_misses(model: type[BaseModel]) -> st.SearchStrategy[Any]:
    """Keys an operator could type instead of the real ones, and keys YAML reads as non-text."""
    misses: list[Any] = ["[/]", "list[str]", "x" * 300, 1, 1.5, True, None]
    for name in model.model_fields:
        misses += [name + "s", name.upper(), name.replace("_", "-"), name[:-1], f"{name} "]
    return st.one_of(st.sampled_from(misses), st.text(max_size=8))


# Strategies are built once per (place, wrongness): Hypothesis validates each new strategy
# object, which cost more than the whole test when they were made afresh for every draw.
@functools.cache
def section(model: type[BaseModel], path: str, wrongness: int) -> st.SearchStrategy[dict]:
    fields = [
        (name, value_for(f"{path}{name}", field.annotation, wrongness))
        for name, field in model.model_fields.items()
    ]
    junk = st.one_of(WRONG, st.just({}))

    @st.composite
    def build(draw: st.DrawFn) -> dict:
        data: dict[Any, Any] = {}
        for name, values in fields:
            if draw(PERCENT) >= 45:
                continue
            data[name] = draw(values)
        if draw(PERCENT) < wrongness:
            data[draw(near_misses(model))] = draw(junk)
        return data

    return build()


@functools.cache
def value_for(path: str, annotation: Any, wrongness: int) -> st.SearchStrategy[Any]:
    child = model_in(annotation)
    if child is not None and is_list_of_models(annotation):
        right = st.lists(section(child, f"{path}[].", wrongness), max_size=2)
    elif child is not None:
        right = section(child, f"{path}.", wrongness)
    elif path in GOOD:
        good = GOOD[path]
        # Without wrong values, mostly the first (the most usual) value: files then load.
        right = st.sampled_from(good) if wrongness else st.sampled_from([good[0]] * 3 + good)
    else:
        right = WRONG

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        return draw(WRONG) if draw(PERCENT) < wrongness else draw(right)

    return build()


WRONGNESS = st.sampled_from([0, 0, 0, 3, 15, 50])


@st.composite
def documents(draw: st.DrawFn) -> Any:
    return draw(section(BerthConfig, "", draw(WRONGNESS)))


# Aliases of aliases: 9**7 paths through 63 nodes ("billion laughs").
LAUGHS = (
    "a: &a [x,x,x,x,x,x,x,x,x]\n"
    + "".join(
        f"{key}: &{key} [{', '.join([f'*{prev}'] * 9)}]\n"
        for prev, key in zip("abcdef", "bcdefg", strict=True)
    )
    + "network: *g"
)
# A display name the options form cannot send back: browsers send a line break as CR LF.
UNSENDABLE_CHOICE = (
    'images: {allowed: {"a\\nb": "berth/base-notebook:latest", "c": "berth/scipy-notebook:latest"}}'
)

# Whole files and top-level lines that exercise YAML's odd corners.
WHOLE_FILES = [
    "",
    "   \n",
    "# only a comment\n",
    "---\n",
    "~\n",
    "[]\n",
    "- listen\n- port\n",
    "just a sentence\n",
    "42\n",
    "!!binary aGVsbG8=\n",
    "{\n",
    "listen: [\n",
    '"unterminated\n',
    ":\n",
    "&a\n",
    "*a\n",
    "? \n",
    "- - -\n",
    "listen:\n\tport: 1\n",
    "listen: 1\n---\nlisten: 2\n",
    "%YAML 1.1\n---\nnetwork: berth\n",
    "%TAG ! tag:example.org,2000:\n---\nnetwork: !x berth\n",
    "x: " + "[" * 5000 + "]" * 5000 + "\n",
    "services: &a [*a]\n",
    "users: &u {allowed: *u}\n",
    "network: a\x00b\n",
    "network: a\x1bb\n",
    "network: \u2028\n",
    "\ufeffnetwork: berth\n",
    "listen:\r\n  port: 8443\r\n",
]
TOP_LINES = [
    "listen: !!python/object/apply:os.system ['true']",
    "network: !!binary aGVsbG8=",
    "users: {allowed: !!set {alice, bob}}",
    "network: !custom berth",
    "listen: {port: !!float 8443}",
    "listen: {port: !!str 8443}",
    "listen: {port: 0x20FB}",
    "listen: {port: 0o20373}",
    "listen: {port: 1_000}",
    "listen: {port: " + "9" * 5000 + "}",
    "listen: {port: " + "9" * 40 + "}",
    "limits: {cpu: 1e999}",
    "limits: {cpu: 1e300}",
    "limits: {cpu: .nan}",
    "limits: {memory: " + "9" * 400 + "}",
    "limits: {memory: '" + "9" * 400 + "G'}",
    "limits: {memory: 99999999T}",
    "limits: {memory: 2001-01-01}",
    "network: 2001-01-01",
    "network: 2001-02-30",
    "listen: {port: 2001-01-01 10:00:00}",
    "? [a, b]\n: c",
    "? {a: 1}\n: b",
    "1.5: x",
    "~: x",
    "true: x",
    "2001-01-01: x",
    "'[/x]': 1",
    "network: &n berth\nhub: {data_volume: *n}",
    "base: &b {port: 8443}\nlisten:\n  <<: *b",
    "listen:\n  <<: *nowhere",
    "listen: {<<: 5}",
    'network: "\\ud800"',
    'users: {allowed: ["\\udcff"]}',
    'users: {allowed: ["a\\u0000b"]}',
    UNSENDABLE_CHOICE,
    'images: {allowed: {"\\t": "berth/base-notebook:latest"}}',
    LAUGHS,
    "network: berth\nnetwork: berth",
    "listen: {port: 1, port: 2}",
]


HOW = st.sampled_from(["schema"] * 6 + ["whole", "schema+line", "mangled", "bytes"])
WHOLE_FILE = st.sampled_from(WHOLE_FILES)
TOP_LINE = st.sampled_from(TOP_LINES)
JUNK = st.sampled_from(["\t", "\x00", "\x85", ": ", "- ", "&x ", "*x", "!!", "'"])


@st.composite
def files(draw: st.DrawFn) -> bytes:
    """The bytes of a berth.yaml."""
    how = draw(HOW)
    if how == "whole":
        return draw(WHOLE_FILE).encode("utf-8", "surrogatepass")
    text = yaml.safe_dump(draw(documents()), sort_keys=False)
    if how == "schema+line":
        text = text.replace("{}\n", "")  # a bare {} document would swallow the next line
        text += draw(TOP_LINE) + "\n"
    elif how == "mangled":
        cut = draw(st.integers(0, len(text)))
        junk = draw(JUNK)
        text = text[:cut] + junk + text[cut:]
    data = text.encode("utf-8")
    if how == "bytes":
        data = draw(st.sampled_from([b"\xff\xfe" + data, data + b"\xc3", text.encode("utf-16")]))
    return data
