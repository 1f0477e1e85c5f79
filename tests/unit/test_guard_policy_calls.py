"""The engine guard's policy, continued: the calls the hub never makes (refused whatever their
body), and listings, which must stay within this deployment's objects.

Every refusal is an attack the hub could make with the raw engine socket it had before the
guard.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from guard_policy_cases import (
    CID,
    OURS,
    PREFIX,
    judge,
    raw_create,
    refusal,
    volume_facts,
    with_host_config,
)
from guard_requests import sent

from berth.guard import bodies
from berth.guard.policy import Decision, Found, Ref, Request, pull_refusal
from berth.spawner import specs

# -- calls the hub never makes ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (
            lambda api: api.containers(all=True),
            "a container listing must filter by label only",
        ),
        (lambda api: api.info(), "the hub may not call GET /info"),
        (
            lambda api: api.update_container(CID, mem_limit="1g"),
            f"the hub may not call POST /containers/{CID}/update",
        ),
        (
            lambda api: api.put_archive(CID, "/", b""),
            f"the hub may not call PUT /containers/{CID}/archive",
        ),
        (
            lambda api: api.get_archive(CID, "/etc/shadow"),
            f"the hub may not call GET /containers/{CID}/archive",
        ),
        (lambda api: api.attach(CID), f"the hub may not call POST /containers/{CID}/attach"),
        (lambda api: api.create_network("x"), "the hub may not call POST /networks/create"),
        (lambda api: api.remove_image("alpine"), "the hub may not call DELETE /images/alpine"),
        (lambda api: api.load_image(b""), "the hub may not call POST /images/load"),
        (lambda api: api.prune_containers(), "the hub may not call POST /containers/prune"),
        (
            lambda api: api.import_image_from_url("http://example.invalid/x.tar"),
            "importing images is not allowed (only pulls)",
        ),
        (
            lambda api: api.pull("berth/base-notebook", tag="latest"),
            pull_refusal("berth/base-notebook"),
        ),
        (lambda api: api.inspect_network("host"), "network 'host' is not one the hub may use"),
    ],
)
def test_calls_outside_the_spawners_needs_are_refused(call: Any, reason: str) -> None:
    assert refusal(sent(call)) == reason


@pytest.mark.parametrize(
    "image",
    ["berth/base-notebook", "docker.io/berth/hub", "index.docker.io/berth/x", "BERTH/Foundation"],
)
def test_berth_images_are_never_pulled(image: str) -> None:
    assert pull_refusal(image).startswith(f"{image!r} is one of Berth's images")


def test_build_is_refused() -> None:
    request = Request("POST", "/v1.41/build?t=x", {"content-type": "application/x-tar"}, b"")
    assert refusal(request) == "the hub may not call POST /build"


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", "/v4.0.0/libpod/containers/create"),
        ("GET", "/v4.0.0/libpod/containers/json"),
        ("POST", "/v4.3.1/libpod/containers/berth-x/exec"),
        ("POST", "/libpod/images/pull"),
        ("POST", "/v4.0.0/libpod/play/kube"),
    ],
)
def test_podmans_own_api_is_refused(method: str, target: str) -> None:
    """Podman (docs/podman.md) also answers its native API (``/v4.x/libpod/...``) on the same
    socket, with bodies of another shape (a privileged spec generator, a Kubernetes YAML): none
    of it is in the guard's tables, whatever the version, so the hub gets only the Docker calls
    the policy checks."""
    body = b'{"privileged": true}' if method == "POST" else b""
    request = Request(method, target, {"content-type": "application/json"} if body else {}, body)
    path = target.split("/libpod", 1)[1]
    assert refusal(request) == f"the hub may not call {method} /libpod{path}"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (
            "/v1.41/containers/x/../../build",
            "unusual request path '/v1.41/containers/x/../../build'",
        ),
        ("/v1.41/containers/%2e%2e/json", "unusual request path '/v1.41/containers/%2e%2e/json'"),
        ("/v1.41/containers/a%252fb/json", "unusual request path '/v1.41/containers/a%252fb/json'"),
        ("/v1.41//containers/x/json", "unusual request path '/v1.41//containers/x/json'"),
        ("http://docker/v1.41/_ping", "the request target must be a path"),
        ("/v1.41/containers/-x/json", "unusual object name '-x'"),
    ],
)
def test_ambiguous_paths_are_refused(target: str, reason: str) -> None:
    assert refusal(Request("GET", target)) == reason


def test_form_encoded_requests_are_refused() -> None:
    """The engine would read a form body's fields as query parameters (fromImage=berth/x)."""
    request = Request(
        "POST",
        "/v1.41/images/create?fromImage=alpine",
        {"content-type": "application/x-www-form-urlencoded"},
        b"fromImage=berth/hub",
    )
    assert refusal(request) == "form-encoded requests are not allowed"


def test_the_first_of_repeated_query_values_decides_as_in_the_engine() -> None:
    request = Request("POST", "/v1.41/images/create?fromImage=berth/hub&fromImage=alpine")
    assert refusal(request) == pull_refusal("berth/hub")


def test_a_refusal_message_names_the_guard() -> None:
    assert Decision(False, "nope").message == "berth engine guard: nope"


def test_host_settings_at_the_top_level_are_refused() -> None:
    """Without a HostConfig object the engine reads Privileged, Binds, ... from the top level."""
    top_level = {"Image": "alpine", "Labels": OURS, "Privileged": True, "Binds": ["/:/host"]}
    assert refusal(raw_create(top_level)) == "containers need a HostConfig object"
    assert refusal(raw_create({**top_level, "HostConfig": None})) == (
        "containers need a HostConfig object"
    )


def test_a_start_cannot_carry_host_settings() -> None:
    """Below API 1.24 the engine takes a HostConfig from the body of a container start."""
    body = json.dumps({"Privileged": True, "Binds": ["/:/host"]}).encode()
    headers = {"content-type": "application/json"}
    facts = {Ref("container", "ada"): Found(CID, OURS)}
    old = Request("POST", "/v1.23/containers/ada/start", headers, body)
    assert refusal(old, facts) == "API version 1.23 is older than 1.40"
    current = Request("POST", "/v1.41/containers/ada/start", headers, body)
    assert refusal(current, facts) == "POST /containers/ada/start takes no request body"
    unversioned = Request("POST", "/containers/ada/start", headers, body)
    assert refusal(unversioned, facts) == "POST /containers/ada/start takes no request body"
    assert judge(Request("POST", "/containers/ada/start"), facts) == Decision(
        True, target=f"/containers/{CID}/start"
    )


@pytest.mark.parametrize("version", ["1.12", "1.23", "1.39", "0.9"])
def test_old_api_versions_are_refused(version: str) -> None:
    assert refusal(Request("GET", f"/v{version}/_ping")) == (
        f"API version {version} is older than 1.40"
    )


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/srv/berth-shared", True),
        ("/srv/berth-shared/", True),
        ("/srv/berth-shared/ada/../bob", True),
        ("//srv/berth-shared/ada", True),
        ("/srv/berth-shared/..", False),
        ("/srv/berth-shared/ada/../../../etc", False),
        ("/srv/berth-shared-evil", False),
        ("/srv", False),
        ("srv/berth-shared", False),
        ("/srv/berth-shared/a\0b", False),
    ],
)
def test_host_paths_are_compared_after_normalizing(path: str, allowed: bool) -> None:
    assert bodies.host_path_allowed(path, ("/srv/berth-shared",)) is allowed


# -- container listings (the spawner's clean-up after a hub killed mid-spawn) ----------------

LIST_REFUSAL = (
    f"a container listing must filter by the labels berth.managed=true and berth.prefix={PREFIX}"
)


def test_the_spawners_own_listing_is_allowed() -> None:
    """What :func:`berth.spawner.volumes.interrupted_inits` sends, through docker-py."""
    wanted = {
        specs.LABEL_MANAGED: "true",
        specs.LABEL_PREFIX: PREFIX,
        specs.LABEL_ROLE: specs.ROLE_VOLUME_INIT,
        specs.LABEL_USER: "ada",
    }
    filters = {"label": [f"{key}={value}" for key, value in wanted.items()]}
    request = sent(lambda api: api.containers(all=True, filters=filters))
    assert judge(request).allowed


@pytest.mark.parametrize(
    ("filters", "reason"),
    [
        ({"label": [f"berth.prefix={PREFIX}"]}, LIST_REFUSAL),
        ({"label": ["berth.managed=true", "berth.prefix=other"]}, LIST_REFUSAL),
        ({"label": ["berth.managed=true"]}, LIST_REFUSAL),
        (
            {"label": ["berth.managed=true", f"berth.prefix={PREFIX}"], "name": ["x"]},
            "a container listing must filter by label only",
        ),
        ({"label": {"berth.managed=true": False, f"berth.prefix={PREFIX}": True}}, LIST_REFUSAL),
    ],
)
def test_listings_beyond_this_deployments_objects_are_refused(
    filters: dict[str, Any], reason: str
) -> None:
    """A hub that could list every container would learn other tenants' names, labels and
    mounts; the engine's own label filter must confine the answer to Berth's objects."""
    request = sent(lambda api: api.containers(all=True, filters=filters))
    assert refusal(request) == reason


def test_a_listing_with_a_filter_given_twice_is_refused() -> None:
    wanted = json.dumps({"label": ["berth.managed=true", f"berth.prefix={PREFIX}"]})
    target = f"/v1.41/containers/json?all=1&filters={wanted}&filters=%7B%7D"
    assert "once each" in refusal(Request("GET", target))


def test_only_this_deployments_volumes_may_be_deleted() -> None:
    """The spawner deletes a volume whose preparation a killed hub cut short; the hub's data
    volume (no prefix label), an operator's or another deployment's volume stay out of reach."""
    ours = sent(lambda api: api.remove_volume(f"{PREFIX}-ada"))
    assert judge(ours, volume_facts(f"{PREFIX}-ada")).allowed
    theirs = sent(lambda api: api.remove_volume("postgres-data"))
    assert "is not Berth's" in refusal(theirs, volume_facts("postgres-data", labels={}))
    hub_data = {specs.LABEL_MANAGED: "true", "berth.role": "hub-data"}
    assert "is not Berth's" in refusal(
        sent(lambda api: api.remove_volume("berth-hub-data")),
        volume_facts("berth-hub-data", labels=hub_data),
    )


def test_a_port_published_on_loopback_and_the_default_log_driver_are_allowed() -> None:
    """The spawner publishes on 127.0.0.1 when it does not use the network's addresses."""
    request = with_host_config(
        port_bindings={8888: ("127.0.0.1", None)}, log_config={"type": "json-file"}
    )
    assert judge(request).allowed


def test_the_spawner_may_list_this_deployments_snapshots_only() -> None:
    """The hub looks for a user's `berth snapshot` images; an image listing not confined by the
    engine's label filter to this deployment's snapshots would show it every image on the host
    (the guard had no image listing route before snapshots: all were refused)."""
    ours = {"label": [f"berth.snapshot.prefix={PREFIX}", "berth.snapshot.owner=ada"]}
    assert judge(sent(lambda api: api.images(filters=ours))).allowed
    # those an admin shared with ada (`berth snapshot share`): the same confinement
    shared = {"label": [f"berth.snapshot.prefix={PREFIX}", "berth.snapshot.shared.ada=ada"]}
    assert judge(sent(lambda api: api.images(filters=shared))).allowed
    everyones = {"label": ["berth.snapshot.shared.ada=ada"]}
    assert f"berth.snapshot.prefix={PREFIX}" in refusal(
        sent(lambda api: api.images(filters=everyones))
    )
    for filters, reason in [
        (None, "must filter by label only"),
        ({"label": ["berth.snapshot.owner=ada"]}, f"berth.snapshot.prefix={PREFIX}"),
        ({"label": ["berth.snapshot.prefix=other"]}, f"berth.snapshot.prefix={PREFIX}"),
        ({"label": [f"berth.snapshot.prefix={PREFIX}"], "dangling": ["true"]}, "by label only"),
        ({"reference": ["*"]}, "by label only"),
    ]:
        assert reason in refusal(sent(lambda api, f=filters: api.images(filters=f)))
    named = sent(lambda api: api.images(name="secret/app", filters=ours))
    assert "an image listing must filter by label only" in refusal(named)
    wide = Request("GET", sent(lambda api: api.images(filters=ours)).target + "&digests=1")
    assert "only the all, filters and only_ids" in refusal(wide)
