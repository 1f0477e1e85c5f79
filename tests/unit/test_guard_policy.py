"""The engine guard's policy as pure functions, on the requests docker-py really sends.

Every refusal is an attack the hub could make with the raw engine socket it had before the
guard (on main, `berth up` mounts /var/run/docker.sock into the hub: each of these requests
would have been carried out).
"""

from __future__ import annotations

import json
from typing import Any

import docker
import pytest
from guard_requests import create_container, sent

from berth.guard import bodies
from berth.guard.bodies import ALLOWED_CAPS, Limits
from berth.guard.policy import Decision, Found, Ref, Request, decide, needs, pull_refusal
from berth.spawner import specs
from berth.spawner.volumes import volume_create_kwargs, volume_init_kwargs

PREFIX = "berth-guard-unit"
LIMITS = Limits(PREFIX, allow_binds=("/srv/berth-shared",), networks=("berth-net", "bridge"))
OURS = {specs.LABEL_MANAGED: "true", specs.LABEL_PREFIX: PREFIX}
CID = "c" * 64
EXEC_ID = "e" * 64
IDENTITY = specs.Identity(username="ada", prefix=PREFIX)


def spawner_kwargs(**changes: Any) -> dict[str, Any]:
    """The spawner's create kwargs for a default user server, with changes to the spec."""
    fields: dict[str, Any] = {"mounts": (specs.Mount(f"{PREFIX}-ada", "/home/jovyan"),)}
    spec = specs.ContainerSpec(
        name=f"{PREFIX}-ada",
        image="berth/base-notebook:latest",
        identity=IDENTITY,
        **{**fields, **changes},
    )
    return specs.container_create_kwargs(spec)


def volume_facts(*names: str, labels: dict[str, str] | None = None) -> dict[Ref, Found | None]:
    return {Ref("volume", name): Found(name, OURS if labels is None else labels) for name in names}


def judge(request: Request, facts: dict[Ref, Found | None] | None = None) -> Decision:
    return decide(request, LIMITS, facts or {})


def refusal(request: Request, facts: dict[Ref, Found | None] | None = None) -> str:
    decision = judge(request, facts)
    assert not decision.allowed, f"allowed: {request}"
    return decision.reason


def with_host_config(**host_config: Any) -> Request:
    """A Berth-labelled container whose host config has these docker-py keyword arguments."""
    base: dict[str, Any] = {"cap_drop": ["ALL"], "security_opt": ["no-new-privileges"]}
    return create_container(
        {
            "image": "berth/base-notebook:latest",
            "labels": OURS,
            "host_config": {**base, **host_config},
        }
    )


def raw_create(body: dict[str, Any] | bytes) -> Request:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Request("POST", "/v1.41/containers/create", {"content-type": "application/json"}, data)


# -- what the spawner sends is allowed -------------------------------------------------------


def test_spawner_user_container_is_allowed_once_its_volume_is_berths() -> None:
    request = create_container(spawner_kwargs())
    assert needs(request, LIMITS) == (Ref("volume", f"{PREFIX}-ada"),)
    assert judge(request, volume_facts(f"{PREFIX}-ada")) == Decision(
        True, target=f"/v1.41/containers/create?name={PREFIX}-ada"
    )


def test_spawner_root_start_with_grant_sudo_network_and_limits_is_allowed() -> None:
    env = {"GRANT_SUDO": "yes", "NB_UID": "1234"}
    request = create_container(
        spawner_kwargs(
            environment=env,
            privileges=specs.start_privileges(env),
            resources=specs.Resources(mem_limit=2**30, cpu_limit=1.5, cpu_guarantee=0.5),
            networking=specs.Networking(network_name="berth-net", use_internal_ip=True),
        )
    )
    body = json.loads(request.body)
    assert sorted(body["HostConfig"]["CapAdd"]) == [
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID"
    ]  # fmt: skip
    assert judge(request, volume_facts(f"{PREFIX}-ada")).allowed


def test_spawner_host_path_mount_under_an_allowed_bind_is_allowed() -> None:
    mount = specs.Mount("/srv/berth-shared/ada", "/home/jovyan/shared", read_only=True)
    request = create_container(spawner_kwargs(mounts=(mount,)))
    assert needs(request, LIMITS) == (Ref("hostpath", "/srv/berth-shared/ada"),)
    assert judge(request, {Ref("hostpath", "/srv/berth-shared/ada"): None}).allowed  # unseen
    seen = Found("/srv/berth-shared/ada", {})
    assert judge(request, {Ref("hostpath", "/srv/berth-shared/ada"): seen}).allowed


def test_a_symlink_under_an_allowed_bind_that_leads_out_is_refused() -> None:
    """A container that can write into an allowed tree plants ada -> /etc; the next bind of
    /srv/berth-shared/ada would mount the host's /etc (the engine follows the link)."""
    mount = specs.Mount("/srv/berth-shared/ada", "/home/jovyan/shared")
    request = create_container(spawner_kwargs(mounts=(mount,)))
    facts = {Ref("hostpath", "/srv/berth-shared/ada"): Found("/etc", {})}
    assert refusal(request, facts) == (
        "host path '/srv/berth-shared/ada' leads to '/etc' (a symbolic link), outside the "
        "allowed paths"
    )


def test_volume_init_container_and_volume_create_are_allowed() -> None:
    init = create_container(
        volume_init_kwargs("berth/base-notebook", f"{PREFIX}-ada", "/home/jovyan", "1000", IDENTITY)
    )
    assert judge(init, volume_facts(f"{PREFIX}-ada")).allowed
    create = sent(lambda api: api.create_volume(**volume_create_kwargs(f"{PREFIX}-ada", IDENTITY)))
    assert judge(create) == Decision(True, target="/v1.41/volumes/create")


def test_the_guards_constants_are_the_spawners() -> None:
    """The guard copies them to stay free of JupyterHub; a change in specs must reach it."""
    init = volume_init_kwargs("img", "vol", "/t", "", IDENTITY)
    assert tuple(init["host_config"]["cap_add"]) == bodies.VOLUME_INIT_CAPS
    assert init["host_config"]["security_opt"] == [bodies.NO_NEW_PRIVILEGES]
    assert (bodies.ROOT_START_CAPS, bodies.GRANT_SUDO_EXTRA_CAPS) == (
        specs.ROOT_START_CAPS,
        specs.GRANT_SUDO_EXTRA_CAPS,
    )
    assert {"SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH", "ALL"}.isdisjoint(
        ALLOWED_CAPS
    )


@pytest.mark.parametrize(
    ("call", "target"),
    [
        (lambda api: api.inspect_container(f"{PREFIX}-ada"), f"/v1.41/containers/{CID}/json"),
        (lambda api: api.start(f"{PREFIX}-ada"), f"/v1.41/containers/{CID}/start"),
        (lambda api: api.stop(f"{PREFIX}-ada", timeout=3), f"/v1.41/containers/{CID}/stop?t=3"),
        (lambda api: api.kill(f"{PREFIX}-ada"), f"/v1.41/containers/{CID}/kill"),
        (lambda api: api.wait(f"{PREFIX}-ada"), f"/v1.41/containers/{CID}/wait"),
        (
            lambda api: api.remove_container(f"{PREFIX}-ada", v=False, force=True),
            f"/v1.41/containers/{CID}?v=False&link=False&force=True",
        ),
        (
            lambda api: api.logs(f"{PREFIX}-ada", tail=20),
            f"/v1.41/containers/{CID}/logs?stderr=1&stdout=1&timestamps=0&follow=0&tail=20",
        ),
        (lambda api: api.exec_create(f"{PREFIX}-ada", ["id"]), f"/v1.41/containers/{CID}/exec"),
    ],
)
def test_operations_on_berths_container_are_pinned_to_its_id(call: Any, target: str) -> None:
    request = sent(call)
    assert needs(request, LIMITS) == (Ref("container", f"{PREFIX}-ada"),)
    facts = {Ref("container", f"{PREFIX}-ada"): Found(CID, OURS)}
    assert judge(request, facts) == Decision(True, target=target)


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.exec_start(EXEC_ID),
        lambda api: api.exec_inspect(EXEC_ID),
        lambda api: api.exec_resize(EXEC_ID, height=20, width=80),
    ],
)
def test_exec_calls_follow_their_containers_labels(call: Any) -> None:
    request = sent(call)
    assert needs(request, LIMITS) == (Ref("exec", EXEC_ID),)
    assert judge(request, {Ref("exec", EXEC_ID): Found(EXEC_ID, OURS)}).allowed
    foreign = judge(request, {Ref("exec", EXEC_ID): Found(EXEC_ID, {"app": "db"})})
    assert not foreign.allowed and "not Berth's" in foreign.reason


def test_exec_start_keeps_its_upgrade_headers() -> None:
    request = sent(lambda api: api.exec_start(EXEC_ID))
    assert (request.headers["connection"], request.headers["upgrade"]) == ("Upgrade", "tcp")


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.ping(),
        lambda api: api.version(),
        lambda api: api.inspect_image("berth/base-notebook:latest"),
        lambda api: api.inspect_image("quay.io/jupyter/base-notebook@sha256:" + "a" * 64),
        lambda api: api.pull("alpine", tag="3.20"),
        lambda api: api.inspect_network("berth-net"),
    ],
)
def test_read_only_and_pull_calls_need_no_look_up(call: Any) -> None:
    request = sent(call)
    assert needs(request, LIMITS) == ()
    assert judge(request) == Decision(True, target=request.target)


def test_missing_objects_are_answered_not_found() -> None:
    request = sent(lambda api: api.inspect_container(f"{PREFIX}-gone"))
    gone = Ref("container", f"{PREFIX}-gone")
    assert judge(request, {gone: None}) == Decision(True, missing=gone)


def test_network_connect_needs_an_allowed_network_and_berths_container() -> None:
    request = sent(lambda api: api.connect_container_to_network(f"{PREFIX}-ada", "berth-net"))
    assert needs(request, LIMITS) == (Ref("container", f"{PREFIX}-ada"),)
    assert judge(request, {Ref("container", f"{PREFIX}-ada"): Found(CID, OURS)}).allowed
    assert "not Berth's" in refusal(request, {Ref("container", f"{PREFIX}-ada"): Found(CID, {})})
    other = sent(lambda api: api.connect_container_to_network(f"{PREFIX}-ada", "corp-db"))
    assert refusal(other) == "network 'corp-db' is not one the hub may use"


# -- container create: every escape from the sandbox is refused -------------------------------


@pytest.mark.parametrize(
    ("host_config", "reason"),
    [
        ({"privileged": True}, "privileged containers are not allowed"),
        ({"cap_add": ["SYS_ADMIN"]}, "capabilities SYS_ADMIN are not allowed (CapAdd)"),
        ({"cap_add": ["CAP_SYS_PTRACE"]}, "capabilities SYS_PTRACE are not allowed (CapAdd)"),
        ({"cap_add": ["ALL"]}, "capabilities ALL are not allowed (CapAdd)"),
        # dockerd would connect from the host's network to an address the hub names.
        (
            {"log_config": {"type": "syslog", "config": {"syslog-address": "tcp://10.0.0.1:514"}}},
            "log driver 'syslog' is not allowed",
        ),
        (
            {"port_bindings": {8888: ("0.0.0.0", 8888)}},
            "port 8888/tcp may be published on loopback only, not '0.0.0.0'",
        ),
        ({"publish_all_ports": True}, "PublishAllPorts is not allowed"),
        # "shocker": with it, seccomp allows open_by_handle_at and the host's files are open.
        # Fails before this change (the volume-init container's caps included it).
        (
            {"cap_add": ["DAC_READ_SEARCH", "DAC_OVERRIDE"]},
            "capabilities DAC_READ_SEARCH are not allowed (CapAdd)",
        ),
        (
            {"cap_drop": []},
            "containers must drop all capabilities (CapDrop [ALL]) and add back few",
        ),
        ({"network_mode": "host"}, "network mode 'host' shares a namespace outside the container"),
        (
            {"network_mode": "container:berth-hub"},
            "network mode 'container:berth-hub' shares a namespace outside the container",
        ),
        ({"network_mode": "corp-db"}, "network 'corp-db' is not one the hub may use"),
        (
            {"pid_mode": "host"},
            "pidmode 'host' is not allowed (only the container's own namespace)",
        ),
        (
            {"pid_mode": "container:berth-hub"},
            "pidmode 'container:berth-hub' is not allowed (only the container's own namespace)",
        ),
        (
            {"ipc_mode": "host"},
            "ipcmode 'host' is not allowed (only the container's own namespace)",
        ),
        (
            {"uts_mode": "host"},
            "utsmode 'host' is not allowed (only the container's own namespace)",
        ),
        (
            {"userns_mode": "host"},
            "usernsmode 'host' is not allowed (only the container's own namespace)",
        ),
        (
            {"cgroupns": "host"},
            "cgroupnsmode 'host' is not allowed (only the container's own namespace)",
        ),
        ({"devices": ["/dev/sda:/dev/sda:rwm"]}, "Devices (host devices) is not allowed"),
        (
            {"device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]},
            "DeviceRequests (host devices) is not allowed",
        ),
        ({"device_cgroup_rules": ["c *:* rmw"]}, "DeviceCgroupRules is not allowed"),
        (
            {"security_opt": ["seccomp=unconfined"]},
            "security option 'seccomp=unconfined' is not allowed",
        ),
        (
            {"security_opt": ["apparmor=unconfined"]},
            "security option 'apparmor=unconfined' is not allowed",
        ),
        (
            {"security_opt": ["systempaths=unconfined"]},
            "security option 'systempaths=unconfined' is not allowed",
        ),
        ({"security_opt": ["label=disable"]}, "security option 'label=disable' is not allowed"),
        ({"cgroup_parent": "/"}, "CgroupParent is not allowed"),
        ({"sysctls": {"kernel.shm_rmid_forced": "1"}}, "Sysctls is not allowed"),
        ({"volume_driver": "evil"}, "VolumeDriver is not allowed"),
        ({"volumes_from": ["berth-hub"]}, "VolumesFrom is not allowed"),
        ({"links": {"berth-hub": "hub"}}, "Links is not allowed"),
        ({"runtime": "nvidia"}, "runtime 'nvidia' is not allowed"),
        (
            {"binds": {"/": {"bind": "/host", "mode": "rw"}}},
            "bind mount of host path '/' is not allowed",
        ),
        (
            {"binds": {"/etc": {"bind": "/host-etc", "mode": "ro"}}},
            "bind mount of host path '/etc' is not allowed",
        ),
        (
            {"binds": ["/var/run/docker.sock:/var/run/docker.sock"]},
            "bind mount of host path '/var/run/docker.sock' is not allowed",
        ),
        (
            {"binds": ["/srv/berth-shared/../../etc:/x"]},
            "bind mount of host path '/srv/berth-shared/../../etc' is not allowed",
        ),
        (
            {"binds": ["/srv/berth-shared-not:/x"]},
            "bind mount of host path '/srv/berth-shared-not' is not allowed",
        ),
        (
            {"mounts": [docker.types.Mount("/x", "/", type="bind")]},
            "bind mount of host path '/' is not allowed",
        ),
        (
            {
                "mounts": [
                    docker.types.Mount(
                        "/x", "v", driver_config=docker.types.DriverConfig("local", {"o": "bind"})
                    )
                ]
            },
            "volume mounts with a DriverConfig are not allowed",
        ),
        (
            {"mounts": [docker.types.Mount("/x", "pipe", type="npipe")]},
            "mounts of type 'npipe' are not allowed",
        ),
    ],
)
def test_container_escapes_are_refused(host_config: dict[str, Any], reason: str) -> None:
    assert refusal(with_host_config(**host_config)) == reason


def test_a_named_volume_that_is_not_berths_or_missing_is_refused() -> None:
    request = with_host_config(binds={"postgres-data": {"bind": "/data", "mode": "rw"}})
    assert needs(request, LIMITS) == (Ref("volume", "postgres-data"),)
    assert refusal(request, volume_facts("postgres-data", labels={})) == (
        "volume 'postgres-data' is not Berth's (it lacks the labels berth.managed=true, "
        f"berth.prefix={PREFIX})"
    )
    assert refusal(request, {Ref("volume", "postgres-data"): None}) == (
        "volume 'postgres-data' does not exist"
    )


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        (None, f"containers must carry the labels berth.managed=true and berth.prefix={PREFIX}"),
        (
            {"berth.managed": "true"},
            f"containers must carry the labels berth.managed=true and berth.prefix={PREFIX}",
        ),
        (
            {"berth.managed": "true", "berth.prefix": "berth-other"},
            f"containers must carry the labels berth.managed=true and berth.prefix={PREFIX}",
        ),
    ],
)
def test_unlabelled_or_other_deployments_containers_are_refused(
    labels: dict[str, str] | None, reason: str
) -> None:
    request = create_container(
        {"image": "alpine", "labels": labels, "host_config": {"cap_drop": ["ALL"]}}
    )
    assert refusal(request) == reason


def test_endpoints_config_networks_are_checked_too() -> None:
    request = sent(
        lambda api: api.create_container(
            "alpine",
            labels=OURS,
            host_config=api.create_host_config(cap_drop=["ALL"], network_mode="berth-net"),
            networking_config=api.create_networking_config(
                {"berth-net": api.create_endpoint_config(), "corp-db": api.create_endpoint_config()}
            ),
        )
    )
    assert refusal(request) == "network 'corp-db' is not one the hub may use"


def test_runtime_annotations_are_refused() -> None:
    body = {
        "Image": "a",
        "Labels": OURS,
        "HostConfig": {"CapDrop": ["ALL"], "Annotations": {"x": "y"}},
    }
    assert refusal(raw_create(body)) == "Annotations is not allowed"


def test_go_style_case_insensitive_keys_cannot_sneak_past() -> None:
    """The engine's JSON decoder matches keys case-insensitively: lower case must not pass."""
    body = {
        "Image": "alpine",
        "Labels": OURS,
        "HostConfig": {"CapDrop": ["ALL"], "privileged": True},
    }
    assert refusal(raw_create(body)) == "privileged containers are not allowed"
    body = {
        "Image": "alpine",
        "Labels": OURS,
        "hostconfig": {"CapDrop": ["ALL"], "PIDMODE": "host"},
    }
    assert refusal(raw_create(body)) == (
        "pidmode 'host' is not allowed (only the container's own namespace)"
    )
    twice = {
        "Image": "alpine",
        "Labels": OURS,
        "HostConfig": {"Privileged": False, "privileged": True},
    }
    assert refusal(raw_create(twice)) == "HostConfig sets 'privileged' twice (in two spellings)"


def test_duplicate_keys_and_bad_json_are_refused() -> None:
    dup = b'{"Image":"a","Labels":{},"HostConfig":{"Privileged":false,"Privileged":true}}'
    assert refusal(raw_create(dup)) == "JSON key 'Privileged' given twice"
    assert refusal(raw_create(b"{nope")).startswith("request body is not valid JSON")
    assert refusal(raw_create(b"")) == (
        f"containers must carry the labels berth.managed=true and berth.prefix={PREFIX}"
    )


def test_a_privileged_exec_is_refused() -> None:
    request = sent(lambda api: api.exec_create(f"{PREFIX}-ada", ["sh"], privileged=True))
    assert refusal(request, {Ref("container", f"{PREFIX}-ada"): Found(CID, OURS)}) == (
        "privileged exec is not allowed"
    )


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (
            {"labels": None},
            f"volumes must carry the labels berth.managed=true and berth.prefix={PREFIX}",
        ),
        (
            {"driver_opts": {"type": "none", "o": "bind", "device": "/etc"}},
            "volume DriverOpts are not allowed",
        ),
        ({"driver": "sshfs"}, "volume driver 'sshfs' is not allowed"),
    ],
)
def test_volume_create_refusals(kwargs: dict[str, Any], reason: str) -> None:
    args = {**volume_create_kwargs(f"{PREFIX}-ada", IDENTITY), **kwargs}
    assert refusal(sent(lambda api: api.create_volume(**args))) == reason


# -- operating on what is not Berth's ---------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.inspect_container("postgres"),
        lambda api: api.stop("postgres"),
        lambda api: api.remove_container("postgres", force=True),
        lambda api: api.exec_create("postgres", ["cat", "/etc/shadow"]),
        lambda api: api.logs("postgres"),
    ],
)
def test_foreign_containers_are_refused(call: Any) -> None:
    request = sent(call)
    facts = {Ref("container", "postgres"): Found(CID, {"com.example": "db"})}
    assert refusal(request, facts) == (
        "container 'postgres' is not Berth's (it lacks the labels berth.managed=true, "
        f"berth.prefix={PREFIX})"
    )


def test_another_deployments_container_is_refused() -> None:
    request = sent(lambda api: api.stop("berth-other-ada"))
    labels = {specs.LABEL_MANAGED: "true", specs.LABEL_PREFIX: "berth-other"}
    assert not judge(request, {Ref("container", "berth-other-ada"): Found(CID, labels)}).allowed


def test_foreign_volume_inspect_is_refused() -> None:
    request = sent(lambda api: api.inspect_volume("postgres-data"))
    assert "not Berth's" in refusal(request, volume_facts("postgres-data", labels={}))


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
