"""What each container of a real `berth up` may do and reach: unprivileged service containers,
secrets only in mode-600 files, an internet-facing proxy without the engine or the hub's data,
and a hub whose engine calls the guard limits to what the spawner needs.

One deployment for the module (the `hub_deployment` fixture in tests/conftest.py); the tests
need no order. The rest of `berth up`'s behaviour: test_deploy.py.
"""

from __future__ import annotations

import json

import pytest
from engine_reports import granted_capabilities

pytestmark = pytest.mark.integration

SERVICE = ["berth-hub", "berth-proxy", "berth-engine-guard"]  # unprivileged, no capability

NET_ADMIN = 1 << 12  # CAP_NET_ADMIN's bit in /proc/<pid>/status

# Run inside a container: the kernel's record of each of its processes (this one included).
PROCESS_STATUS = """
import json, os
found = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        continue  # gone meanwhile
    found.append({
        "pid": int(pid),
        "Uid": int(fields["Uid"].split()[1]),  # the effective user
        "NoNewPrivs": int(fields["NoNewPrivs"]),
        **{key: int(fields[key], 16) for key in ("CapPrm", "CapEff", "CapBnd", "CapAmb")},
    })
print(json.dumps(found))
"""


def process_status(container) -> list[dict[str, int]]:
    """Each process of a running container, as the kernel sees it (read with the container's
    own python3, in an exec session that runs with the container's settings)."""
    run = container.exec_run(["python3", "-c", PROCESS_STATUS])
    assert run.exit_code == 0, run.output.decode()
    processes = json.loads(run.output.decode().strip().splitlines()[-1])
    assert len(processes) >= 2, processes  # the container's own process and this one
    return processes


# Run inside the proxy container: every way to the engine and to the hub's data.
PROXY_ATTACK = """
import json, os, socket
found = {}
for path in ("/var/run/docker.sock", "/run/berth-engine/docker.sock"):
    try:
        socket.socket(socket.AF_UNIX).connect(path)
        found[path] = "connected"
    except OSError:
        found[path] = "unreachable"
try:
    import docker
    docker.from_env(timeout=5).ping()
    found["docker.from_env"] = "connected"
except Exception:
    found["docker.from_env"] = "unreachable"
for path in ("/srv/berth/data/jupyterhub.sqlite", "/srv/berth/data/secrets/cookie_secret"):
    found[path] = "present" if os.path.exists(path) else "absent"
try:
    open("/srv/berth/proxy/proxy_token", "a").close()
    found["write the proxy volume"] = "written"
except OSError:
    found["write the proxy volume"] = "refused"
print(json.dumps(found))
"""

# Run inside the hub container with the docker SDK and the container's own DOCKER_HOST.
HUB_ATTACKS = (
    "privileged",
    "host network",
    "bind of /",
    "cap SYS_ADMIN",
    "the hub's data volume",
    "stop berth-proxy",
    "exec in the engine guard",
    "inspect berth-proxy",
)
HUB_ATTACK = """
import json, os, docker
client = docker.from_env(timeout=30)
berth = {"berth.managed": "true", "berth.prefix": "berth", "berth.role": "single-user"}
# Everything else as a spawner would ask, so that each refusal is for the attack itself.
base = dict(image="berth/foundation:latest", command=["true"], labels=berth,
            cap_drop=["ALL"], security_opt=["no-new-privileges"])
tries = {
    "privileged": lambda: client.containers.create(name="berth-attack-1", privileged=True, **base),
    "host network": lambda: client.containers.create(
        name="berth-attack-2", network_mode="host", **base),
    "bind of /": lambda: client.containers.create(
        name="berth-attack-3", volumes={"/": {"bind": "/host", "mode": "rw"}}, **base),
    "cap SYS_ADMIN": lambda: client.containers.create(
        name="berth-attack-4", cap_add=["SYS_ADMIN"], **base),
    "the hub's data volume": lambda: client.containers.create(
        name="berth-attack-5", volumes={os.environ["DATA"]: {"bind": "/data"}}, **base),
    "stop berth-proxy": lambda: client.api.stop("berth-proxy"),
    "exec in the engine guard": lambda: client.api.exec_create("berth-engine-guard", ["id"]),
    "inspect berth-proxy": lambda: client.api.inspect_container("berth-proxy"),
}
found = {}
for name, attempt in tries.items():
    try:
        attempt()
        found[name] = "allowed"
    except docker.errors.APIError as exc:
        found[name] = exc.status_code
print(json.dumps(found))
"""


def test_service_containers_are_unprivileged(hub_deployment, engine):
    """Every service container drops all capabilities and runs as a user other than root,
    except the firewall: root with NET_ADMIN only, in the host's network, with no mounts.
    Checked where it takes effect, in the kernel's record of every process in each container
    (the inspect records say it differently on Docker and Podman, docs/podman.md)."""
    for name in SERVICE:
        container = engine.containers.get(name)
        config = container.attrs["HostConfig"]
        assert granted_capabilities(config) == set(), name
        assert not config["Privileged"], name
        assert container.attrs["Config"]["User"] not in ("", "root", "0"), name
        processes = process_status(container)
        assert {p["CapBnd"] | p["CapPrm"] | p["CapEff"] | p["CapAmb"] for p in processes} == {0}, (
            name
        )
        assert {p["NoNewPrivs"] for p in processes} == {1}, name
        assert 0 not in {p["Uid"] for p in processes}, name
    firewall = engine.containers.get("berth-firewall")
    config = firewall.attrs["HostConfig"]
    assert config["NetworkMode"] == "host" and not config["Binds"]
    assert granted_capabilities(config) == {"NET_ADMIN"}
    processes = process_status(firewall)
    assert {p["CapBnd"] for p in processes} == {NET_ADMIN}, processes
    assert {p["CapPrm"] | p["CapEff"] | p["CapAmb"] for p in processes} <= {0, NET_ADMIN}
    assert {p["NoNewPrivs"] for p in processes} == {1}


def test_secrets_are_files_of_mode_600_and_never_in_the_environment_or_logs(hub_deployment, engine):
    hub = engine.containers.get("berth-hub")
    # Secrets are born in the volumes with mode 600 and never appear in the environment.
    listing = hub.exec_run(
        [
            "stat",
            "-c",
            "%a %U %n",
            "/srv/berth/data/secrets/cookie_secret",
            "/srv/berth/proxy/proxy_token",
            "/srv/berth/proxy/tls/key.pem",
        ]
    ).output.decode()
    assert listing.count("600 jovyan ") == 3, listing
    secret = hub.exec_run(["cat", "/srv/berth/data/secrets/cookie_secret"]).output.decode()
    token = hub.exec_run(["cat", "/srv/berth/proxy/proxy_token"]).output.decode()
    for name in SERVICE:
        container = engine.containers.get(name)
        env = " ".join(container.attrs["Config"]["Env"] + container.attrs["Config"]["Cmd"])
        for value in (secret.strip(), token.strip()):
            assert value and value not in env, name
            assert value not in container.logs().decode(), name


def test_the_proxy_has_no_engine_and_no_hub_data(hub_deployment, engine):
    """From inside the internet-facing proxy, the engine is out of reach and the hub's
    database and cookie secret are not there to read. Fails on main, where the proxy ran
    in the hub's container, next to the Docker socket and the data volume."""
    proxy = engine.containers.get("berth-proxy")
    mounts = {m["Destination"]: m for m in proxy.attrs["Mounts"]}
    assert set(mounts) == {"/srv/berth/proxy"} and mounts["/srv/berth/proxy"]["RW"] is False
    assert proxy.attrs["HostConfig"]["GroupAdd"] in (None, [])
    attempt = proxy.exec_run(["python3", "-c", PROXY_ATTACK])
    assert attempt.exit_code == 0, attempt.output.decode()
    found = json.loads(attempt.output.decode().strip().splitlines()[-1])
    assert found == {
        "/var/run/docker.sock": "unreachable",
        "/run/berth-engine/docker.sock": "unreachable",
        "docker.from_env": "unreachable",
        "/srv/berth/data/jupyterhub.sqlite": "absent",
        "/srv/berth/data/secrets/cookie_secret": "absent",
        "write the proxy volume": "refused",
    }, found
    # The proxy's processes run as the unprivileged user, not root (each one's effective user
    # as the kernel has it: Podman 4.3 answers `top` with these ps options with an empty body).
    users = {p["Uid"] for p in process_status(proxy)}
    assert users and 0 not in users, users


def test_the_hub_may_only_make_the_calls_the_spawner_needs(hub_deployment, engine):
    """From inside the hub's container, through its DOCKER_HOST, each dangerous call is
    refused with 403 and did not happen, while a normal spawn still works. Fails on main,
    where the hub held the engine's socket itself and every one of these succeeded."""
    dep = hub_deployment
    hub = engine.containers.get("berth-hub")
    proxy_started = engine.containers.get("berth-proxy").attrs["State"]["StartedAt"]
    data = dep.config["hub"]["data_volume"]
    attempt = hub.exec_run(["python3", "-c", HUB_ATTACK], environment={"DATA": data})
    assert attempt.exit_code == 0, attempt.output.decode()
    found = json.loads(attempt.output.decode().strip().splitlines()[-1])
    assert found == {name: 403 for name in HUB_ATTACKS}, found
    leftovers = engine.containers.list(all=True, filters={"name": "berth-attack"})
    assert not leftovers, [c.name for c in leftovers]
    proxy = engine.containers.get("berth-proxy")
    assert proxy.status == "running" and proxy.attrs["State"]["StartedAt"] == proxy_started
    assert engine.containers.get("berth-engine-guard").status == "running"
    # A normal spawn, through the same guard, works.
    assert dep.berth("users", "add", "spawnee").returncode == 0
    dep.start_server("spawnee")
    dep.stop_server("spawnee")
