"""The engine guard on a Swarm manager (``--swarm``), as pure functions, on the requests
docker-py really sends for the Swarm spawner's calls (built by the spawner's own builder).

Every refusal below is an attack a hostile hub could make. On main (before the guard knew the
Swarm) the hub had the manager's own socket with `backend: swarm`, so each of these requests
would have been carried out by the manager; each test here fails on main, where
``berth.guard.services`` and ``Limits.swarm`` do not exist.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from guard_requests import sent
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from berth import names
from berth.guard import services
from berth.guard.bodies import Limits, SwarmLimits
from berth.guard.policy import Decision, Found, Ref, Request, decide, needs
from berth.spawner import specs
from berth.spawner import swarm_specs as ss

PREFIX = "berth"
IMAGE = "node-0:5000/berth/base-notebook:latest"
NETWORK = "berth-net"
SWARM = SwarmLimits(
    images=(IMAGE, "node-0:5000/berth/scipy-notebook:latest"),
    volume_templates=("berth-user-{username}",),
    max_memory=2 * 1024**3,
    max_cpus=1.0,
    max_pids=1024,
    constraints=("node.role==worker",),
    reserved_names=("berth-hub", "berth-proxy", "berth-registry", "berth-engine-guard"),
)
LIMITS = Limits(PREFIX, networks=(NETWORK,), swarm=SWARM)
ADA = specs.Identity(username="ada", prefix=PREFIX)
OURS = specs.labels(ADA)
SERVICE_ID = "s" * 25
TASK_ID = "t" * 25


def service_spec(**changes: Any) -> ss.ServiceSpec:
    """What the Swarm spawner builds for ada's default server under berth.yaml's settings."""
    fields: dict[str, Any] = {
        "name": "berth-ada",
        "image": IMAGE,
        "identity": ADA,
        "network_name": NETWORK,
        "mounts": (specs.Mount("berth-user-ada", "/home/jovyan/work"),),
        "resources": specs.Resources(mem_limit=2 * 1024**3, cpu_limit=1.0, pids_limit=1024),
        "environment": {"JUPYTERHUB_API_TOKEN": "x"},
        "placement": ss.Placement(("node.role==worker",)),
    }
    return ss.ServiceSpec(**{**fields, **changes})


def create(spec: ss.ServiceSpec | None = None) -> Request:
    kwargs = ss.service_create_kwargs(spec or service_spec())
    return sent(lambda api: api.create_service(**kwargs))


def edited(change: Any) -> Request:
    """The spawner's service body after ``change(body)`` edits it (as a hostile hub would)."""
    request = create()
    body = json.loads(request.body)
    change(body)
    return Request(request.method, request.target, request.headers, json.dumps(body).encode())


def container(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = body["TaskTemplate"]["ContainerSpec"]
    return result


def judge(request: Request, facts: dict[Ref, Found | None] | None = None) -> Decision:
    return decide(request, LIMITS, facts or {})


def refusal(request: Request, facts: dict[Ref, Found | None] | None = None) -> str:
    decision = judge(request, facts)
    assert not decision.allowed, f"allowed: {request}"
    return decision.reason


# -- what the Swarm spawner sends is allowed --------------------------------------------------


def test_the_spawners_service_is_allowed_when_its_volume_is_new_or_ada_s() -> None:
    request = create()
    volume = Ref("swarm-volume", "berth-user-ada", owner="ada")
    assert needs(request, LIMITS) == (volume,)
    assert judge(request, {volume: None}) == Decision(True, target="/v1.41/services/create")
    mine = specs.labels(ADA, role=specs.ROLE_VOLUME)
    assert judge(request, {volume: Found("berth-user-ada", mine)}).allowed


def test_root_start_pinned_node_reservation_and_spread_are_allowed() -> None:
    env = {"GRANT_SUDO": "yes"}
    spec = service_spec(
        environment=env,
        privileges=specs.start_privileges(env),
        resources=specs.Resources(2**30, 0.5, 2**29, 0.25, pids_limit=1024),
        placement=ss.Placement(
            ("node.role == worker", "node.labels.big==true"), ("node.labels.rack",)
        ),
        pinned_node="n" * 25,
    )
    assert judge(create(spec)).allowed


def test_the_spawners_other_calls_are_allowed_on_its_own_service() -> None:
    ours = Found(SERVICE_ID, OURS)
    calls = {
        "GET": lambda api: api.inspect_service("berth-ada"),
        "DELETE": lambda api: api.remove_service("berth-ada"),
    }
    for method, call in calls.items():
        request = sent(call)
        assert request.method == method
        assert needs(request, LIMITS) == (Ref("service", "berth-ada"),)
        assert judge(request, {Ref("service", "berth-ada"): ours}) == Decision(
            True, target=f"/v1.41/services/{SERVICE_ID}"
        )
    logs = sent(lambda api: api.service_logs("berth-ada", stdout=True))
    assert judge(logs, {Ref("service", "berth-ada"): ours}).target.startswith(
        f"/v1.41/services/{SERVICE_ID}/logs?"
    )
    task = sent(lambda api: api.inspect_task(TASK_ID))
    assert judge(task, {Ref("task", TASK_ID): Found(TASK_ID, OURS)}) == Decision(
        True, target=f"/v1.41/tasks/{TASK_ID}"
    )
    for call in (
        lambda api: api.inspect_node("n1"),
        lambda api: api.nodes(),
        lambda a: a.version(),
    ):
        assert judge(sent(call)).allowed
    network = sent(lambda api: api.inspect_network(NETWORK))
    assert judge(network) == Decision(True, target=f"/v1.41/networks/{NETWORK}")


def test_a_task_listing_is_narrowed_to_the_one_labelled_service_it_names() -> None:
    request = sent(lambda api: api.tasks(filters={"service": "berth-ada"}))
    assert needs(request, LIMITS) == (Ref("service", "berth-ada"),)
    decision = judge(request, {Ref("service", "berth-ada"): Found(SERVICE_ID, OURS)})
    forwarded = json.dumps({"service": [SERVICE_ID]}, separators=(",", ":"))
    from urllib.parse import urlencode

    assert decision == Decision(True, target="/v1.41/tasks?" + urlencode({"filters": forwarded}))


def test_a_missing_service_or_task_is_a_404_as_from_the_engine() -> None:
    request = sent(lambda api: api.inspect_service("berth-ada"))
    assert judge(request, {Ref("service", "berth-ada"): None}) == Decision(
        True, missing=Ref("service", "berth-ada")
    )


# -- what a hostile hub might try is refused ---------------------------------------------------


def test_a_service_bind_mounting_the_nodes_root_is_refused() -> None:
    def bind_root(body: dict[str, Any]) -> None:
        container(body)["Mounts"] = [{"Type": "bind", "Source": "/", "Target": "/host"}]

    assert refusal(edited(bind_root)) == (
        "mounts of type 'bind' are not allowed (only the user's volumes)"
    )
    host_path = specs.Mount("/", "/host")  # the builder's own bind, from a host-path template
    assert "'bind' are not allowed" in refusal(create(service_spec(mounts=(host_path,))))


@pytest.mark.parametrize(
    ("mount", "reason"),
    [
        ({"Type": "tmpfs", "Target": "/x"}, "mounts of type 'tmpfs' are not allowed"),
        ({"type": "BIND", "Source": "/", "Target": "/h"}, "mounts of type 'BIND' are not allowed"),
        ({"Type": "npipe", "Source": "x", "Target": "/h"}, "mounts of type 'npipe'"),
        ({"Target": "/h", "Source": "berth-user-ada"}, "mounts of type None are not allowed"),
        (
            {"Type": "volume", "Source": "berth-user-ada", "Target": "/h",
             "BindOptions": {"Propagation": "rshared"}},
            "Mounts entry field(s) bindoptions are not allowed",
        ),
        (
            {"Type": "volume", "Source": "berth-user-bob", "Target": "/h",
             "VolumeOptions": {"Labels": OURS}},
            "volume 'berth-user-bob' is not one of this user's volumes (berth-user-ada)",
        ),
        (
            {"Type": "volume", "Source": "berth-hub-data", "Target": "/h",
             "VolumeOptions": {"Labels": OURS}},
            "volume 'berth-hub-data' is not one of this user's volumes (berth-user-ada)",
        ),
        (
            {"Type": "volume", "Source": "berth-user-ada", "Target": "/h",
             "VolumeOptions": {"Labels": {**OURS, "berth.user": "bob"}}},
            "volume 'berth-user-ada' is labelled for another user",
        ),
        (
            {"Type": "volume", "Source": "berth-user-ada", "Target": "/h"},
            "volumes must carry the labels berth.managed=true and berth.prefix=berth",
        ),
        (
            {"Type": "volume", "Source": "berth-user-ada", "Target": "/h", "VolumeOptions": {
                "Labels": OURS, "DriverConfig": {"Name": "local", "Options": {
                    "type": "none", "o": "bind", "device": "/"}}}},
            "a volume's DriverConfig must be the configured driver and options",
        ),
    ],
)  # fmt: skip
def test_mounts_other_than_the_users_own_volumes_are_refused(
    mount: dict[str, Any], reason: str
) -> None:
    def replace(body: dict[str, Any]) -> None:
        container(body)["Mounts"] = [mount]

    assert reason in refusal(edited(replace))


def test_a_volume_the_manager_holds_for_the_hub_or_another_user_is_refused() -> None:
    """The hub's data volume (database, cookie secret, tokens) is on the manager; a user named
    to match it (template berth-{username}, user "hub-data") must not mount it."""
    spec = service_spec(mounts=(specs.Mount("berth-user-ada", "/home/jovyan/work"),))
    volume = Ref("swarm-volume", "berth-user-ada", owner="ada")
    hub_data = Found("berth-user-ada", {"berth.managed": "true", "berth.role": "hub-data"})
    assert refusal(create(spec), {volume: hub_data}) == (
        "volume 'berth-user-ada' exists on the manager and is not Berth's (it lacks the labels "
        "berth.managed=true, berth.prefix=berth)"
    )
    bobs = Found("berth-user-ada", specs.labels(specs.Identity("bob", prefix=PREFIX), "volume"))
    assert (
        refusal(create(spec), {volume: bobs}) == "volume 'berth-user-ada' belongs to another user"
    )


def other_deployment(body: dict[str, Any]) -> None:
    body["Labels"]["berth.prefix"] = "other"


def host_network(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Networks"] = [{"Target": "host"}]


def published(body: dict[str, Any]) -> None:
    body["EndpointSpec"] = {"Ports": [{"TargetPort": 22, "PublishedPort": 2222}]}


def global_mode(body: dict[str, Any]) -> None:
    body["Mode"] = {"Global": {}}


def add_caps(body: dict[str, Any]) -> None:
    container(body)["CapabilityAdd"] = ["CAP_SYS_ADMIN"]


def keep_caps(body: dict[str, Any]) -> None:
    container(body)["CapabilityDrop"] = []


def secret(body: dict[str, Any]) -> None:
    container(body)["Secrets"] = [{"SecretID": "x", "SecretName": "berth-secret-db", "File": {}}]


def privileges(body: dict[str, Any]) -> None:
    container(body)["Privileges"] = {"SELinuxContext": {"Disable": True}}


def sysctls(body: dict[str, Any]) -> None:
    container(body)["sysctls"] = {"net.ipv4.ip_forward": "1"}


def user(body: dict[str, Any]) -> None:
    container(body)["User"] = "0:0"


def image(body: dict[str, Any]) -> None:
    container(body)["Image"] = "docker.io/library/debian:12"


def no_limits(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Resources"] = {}


def more_memory(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"] = 64 * 1024**3


def reserve_all(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Resources"]["Reservations"] = {"MemoryBytes": 64 * 1024**3}


def on_the_manager(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Placement"]["Constraints"] = ["node.role==manager"]


def log_driver(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["LogDriver"] = {"Name": "syslog", "Options": {"syslog-address": "x"}}


def runtime(body: dict[str, Any]) -> None:
    body["TaskTemplate"]["Runtime"] = "plugin"


def hub_name(body: dict[str, Any]) -> None:
    body["Name"] = "berth-proxy"


def deploy_role(body: dict[str, Any]) -> None:
    body["Labels"]["berth.deploy.role"] = "hub"


def stack(body: dict[str, Any]) -> None:
    body["Labels"]["berth.deploy.stack"] = "swarm"


def role(body: dict[str, Any]) -> None:
    body["Labels"]["berth.role"] = "volume"  # out of reach of `berth down`'s clean-up


def two_users(body: dict[str, Any]) -> None:
    container(body)["Labels"]["berth.user"] = "bob"


def two_spellings(body: dict[str, Any]) -> None:
    container(body)["capabilityadd"] = ["SYS_ADMIN"]


def old_networks(body: dict[str, Any]) -> None:
    body["Networks"] = [{"Target": "host"}]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (other_deployment, "a user's services must carry the labels berth.managed=true and "
         "berth.prefix=berth"),
        (host_network, "network 'host' is not one the hub may use"),
        (published, "a user's service publishes no ports"),
        (global_mode, "Mode field(s) global are not allowed"),
        (add_caps, "capabilities SYS_ADMIN are not allowed (CapabilityAdd)"),
        (keep_caps, "a user's service must drop all capabilities (CapabilityDrop [ALL])"),
        (secret, "ContainerSpec field(s) secrets are not allowed"),
        (privileges, "ContainerSpec field(s) privileges are not allowed"),
        (sysctls, "ContainerSpec field(s) sysctls are not allowed"),
        (user, "user '0:0' is not allowed (the image's, or root to start)"),
        (image, "image 'docker.io/library/debian:12' is not one of the allowed images"),
        (no_limits, "the memory limit must be set and at most 2147483648 bytes"),
        (more_memory, "the memory limit must be set and at most 2147483648 bytes"),
        (reserve_all, "the memory reservation is above the memory limit"),
        (on_the_manager, "the placement constraint(s) node.role==worker must stay"),
        (log_driver, "TaskTemplate field(s) logdriver are not allowed"),
        (runtime, "TaskTemplate field(s) runtime are not allowed"),
        (hub_name, "the service name 'berth-proxy' is not one a user's server may take"),
        (deploy_role, "a user's service carries no berth.deploy.* label"),
        (stack, "a user's service carries no berth.deploy.* label"),
        (role, "a user's service carries the label berth.role=single-user"),
        (two_users, "the service's and its containers' labels name different users"),
        (two_spellings, "ContainerSpec sets 'capabilityadd' twice (in two spellings)"),
        (old_networks, "service spec field(s) networks are not allowed"),
    ],
)  # fmt: skip
def test_a_hostile_service_spec_is_refused(change: Any, reason: str) -> None:
    assert refusal(edited(change)) == reason


def test_berths_own_services_and_tasks_are_not_the_hubs() -> None:
    """The hub, proxy and registry services (and their tasks) carry no berth.managed label."""
    own = Found("h" * 25, {"berth.deploy.stack": "swarm", "berth.deploy.role": "hub"})
    for name in ("berth-hub", "berth-proxy", "berth-registry"):
        for call in (
            lambda api, name=name: api.remove_service(name),
            lambda api, name=name: api.inspect_service(name),
            lambda api, name=name: api.service_logs(name, stdout=True),
            lambda api, name=name: api.tasks(filters={"service": name}),
        ):
            assert "is not Berth's" in refusal(sent(call), {Ref("service", name): own})
    assert "is not Berth's" in refusal(
        sent(lambda api: api.inspect_task(TASK_ID)), {Ref("task", TASK_ID): Found(TASK_ID, {})}
    )
    other = Found(SERVICE_ID, {**OURS, "berth.prefix": "other"})
    request = sent(lambda api: api.remove_service("other-ada"))
    assert "is not Berth's" in refusal(request, {Ref("service", "other-ada"): other})


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"label": ["berth.managed=true"]},
        {"service": ["a", "b"]},
        {"service": ["a"], "node": ["n"]},
    ],
)
def test_task_listings_beyond_one_service_are_refused(filters: dict[str, Any]) -> None:
    request = sent(lambda api: api.tasks(filters=filters))
    assert "a task listing" in refusal(request)


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda api: api.secrets(), "the hub may not call GET /secrets"),
        (lambda api: api.inspect_secret("s"), "the hub may not call GET /secrets/s"),
        (lambda api: api.create_secret("s", b"x"), "the hub may not call POST /secrets/create"),
        (lambda api: api.configs(), "the hub may not call GET /configs"),
        (lambda api: api.inspect_swarm(), "the hub may not call GET /swarm"),
        (lambda api: api.init_swarm(), "the hub may not call POST /swarm/init"),
        (lambda api: api.leave_swarm(force=True), "the hub may not call POST /swarm/leave"),
        (lambda api: api.join_swarm(["x:2377"], "t"), "the hub may not call POST /swarm/join"),
        (lambda api: api.unlock_swarm("k"), "the hub may not call POST /swarm/unlock"),
        (
            lambda api: api.update_node("n1", 1, {"Availability": "drain", "Role": "manager"}),
            "the hub may not call POST /nodes/n1/update",
        ),
        (lambda api: api.remove_node("n1", force=True), "the hub may not call DELETE /nodes/n1"),
        (
            lambda api: api.update_service("berth-hub", 1, task_template={"ContainerSpec": {}}),
            "the hub may not call POST /services/berth-hub/update",
        ),
        (lambda api: api.services(), "the hub may not call GET /services"),
        (lambda api: api.plugins(), "the hub may not call GET /plugins"),
        (lambda api: api.exec_create("berth-hub", "sh"), "the hub may not call POST /containers/"),
        (lambda api: api.containers(), "the hub may not call GET /containers/json"),
        (lambda api: api.create_volume("v"), "the hub may not call POST /volumes/create"),
        (lambda api: api.pull("debian"), "the hub may not call POST /images/create"),
        (lambda api: api.info(), "the hub may not call GET /info"),
        (lambda api: api.inspect_network("ingress"), "network 'ingress' is not one the hub may"),
    ],
)
def test_everything_else_of_the_swarm_is_refused(call: Any, reason: str) -> None:
    assert refusal(sent(call)).startswith(reason)


def test_a_single_engine_guard_allows_no_services() -> None:
    single = Limits(PREFIX, networks=(NETWORK,))
    decision = decide(create(), single, {})
    assert decision == Decision(False, "the hub may not call POST /services/create")


def test_shared_volumes_get_exactly_the_configured_driver_and_options() -> None:
    """volume_policy 'shared' (NFS through the local driver): the spawner's DriverConfig is
    allowed when the guard was given the same driver and options; any other is refused."""
    nfs = (("type", "nfs"), ("o", "addr=10.0.0.5,rw"), ("device", ":/export/{username}"))
    shared = Limits(
        PREFIX,
        networks=(NETWORK,),
        swarm=SwarmLimits(**{**SWARM.__dict__, "volume_driver": "local", "volume_options": nfs}),
    )
    options = {"type": "nfs", "o": "addr=10.0.0.5,rw", "device": ":/export/ada"}
    spec = service_spec(volume_driver=ss.VolumeDriver("local", options))
    assert decide(create(spec), shared, {}).allowed
    bobs = service_spec(volume_driver=ss.VolumeDriver("local", {**options, "device": ":/export"}))
    assert decide(create(bobs), shared, {}).reason == (
        "a volume's DriverConfig must be the configured driver and options"
    )
    assert decide(create(), shared, {}).reason == "volumes must use the driver 'local'"
    assert refusal(create(spec)) == (
        "a volume's DriverConfig must be the configured driver and options"
    )


# -- generated: any field the builder never writes is refused, wherever it is put -------------

STRUCTS = {  # where in the spawner's body, and the fields allowed there (folded)
    (): services.SERVICE_FIELDS,
    ("TaskTemplate",): services.TASK_FIELDS,
    ("TaskTemplate", "ContainerSpec"): services.CONTAINER_FIELDS,
    ("TaskTemplate", "ContainerSpec", "Mounts", 0): services.MOUNT_FIELDS,
    ("TaskTemplate", "ContainerSpec", "Mounts", 0, "VolumeOptions"): (
        services.VOLUME_OPTION_FIELDS
    ),
    ("TaskTemplate", "Resources", "Limits"): services.LIMIT_FIELDS,
    ("TaskTemplate", "Placement"): services.PLACEMENT_FIELDS,
}


@settings(max_examples=150, deadline=None)
@given(
    where=st.sampled_from(sorted(STRUCTS, key=len)),
    key=st.text(
        st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), min_size=1
    ),
    value=st.one_of(st.booleans(), st.integers(), st.text(max_size=5), st.just({"x": 1})),
)
def test_any_field_the_builder_never_writes_is_refused(where: tuple, key: str, value: Any) -> None:
    assume(key.lower() not in STRUCTS[where])

    def add(body: dict[str, Any]) -> None:
        target: Any = body
        for step in where:
            target = target[step]
        if key.lower() in {k.lower() for k in target}:  # the same field in another spelling
            return
        target[key] = value

    request = edited(add)
    if request.body == create().body:
        return
    assert not judge(request).allowed


NAMED = Limits(
    PREFIX,
    networks=(NETWORK,),
    swarm=replace(SWARM, volume_templates=("berth-user-{username}{server_suffix}",)),
)


def named_server(server: str, volume: str, user: str = "ada") -> Request:
    """What the Swarm spawner builds for ``user``'s named server ``server`` (servers.named)."""
    identity = specs.Identity(username=user, servername=server, prefix=PREFIX)
    suffix = f"_{names.escape(server)}" if server else ""
    spec = service_spec(
        name=f"berth-{names.escape(user)}{suffix}",
        identity=identity,
        mounts=(specs.Mount(volume, "/home/jovyan/work"),),
    )
    return create(spec)


def test_named_servers_get_their_own_volumes_and_no_one_elses() -> None:
    """servers.named on Swarm: each server's service carries its server suffix and mounts the
    volume the template gives that server; the default server's volume, a sibling's, another
    user's, and Berth's own service names stay out of reach. Fails on main before this change
    only for its first half: main refused servers.named with backend: swarm in berth.yaml."""
    gpu = named_server("gpu", "berth-user-ada_gpu")
    volume = Ref("swarm-volume", "berth-user-ada_gpu", owner="ada")
    assert needs(gpu, NAMED) == (volume,)
    assert decide(gpu, NAMED, {volume: None}).allowed
    assert decide(named_server("", "berth-user-ada"), NAMED, {}).allowed  # the default's
    for server, source in [
        ("gpu", "berth-user-ada"),  # the default server's volume
        ("gpu", "berth-user-ada_cpu"),  # a sibling's
        ("", "berth-user-ada_gpu"),  # the default server taking a named one's
        ("gpu", "berth-user-bob_gpu"),  # another user's
    ]:
        decision = decide(named_server(server, source), NAMED, {})
        assert not decision.allowed and f"volume {source!r} is not one of" in decision.reason
    for reserved in SWARM.reserved_names:
        request = named_server("gpu", "berth-user-ada_gpu")
        body = json.loads(request.body)
        body["Name"] = reserved
        hostile = Request(
            request.method, request.target, request.headers, json.dumps(body).encode()
        )
        decision = decide(hostile, NAMED, {})
        assert not decision.allowed and "is not one a user's server may take" in decision.reason
