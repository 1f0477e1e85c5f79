"""`berth up` with `backend: swarm` on a real 3-node Swarm (tests/swarm_cluster.py), driven by the
`berth` CLI with DOCKER_HOST naming the manager node's engine.

Heavy (three engines in containers, images copied in and pushed through Berth's own registry):
``full`` tier. The tests share one deployment and run in file order.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from connect_probe import PROBE_ARGV
from hub_harness import image_available
from swarm_hostile_hub import HOSTILE_HUB, WHY_REFUSED
from swarm_up_client import TOKEN, answers, logged_in, login, spawn

from berth.images.builder import SOURCE_LABEL, source_digest

pytestmark = [
    pytest.mark.full,
    pytest.mark.skipif(not image_available("berth/base-notebook:latest"), reason="no notebook"),
    pytest.mark.skipif(not image_available("berth/hub:latest"), reason="hub image not built"),
    pytest.mark.skipif(not image_available("berth/registry:latest"), reason="no registry image"),
    # The deployment's self-signed certificate, on the test bridge only.
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]

NOTEBOOK = "berth/base-notebook:latest"
PORT = 8443
BERTH = str(Path(sys.executable).with_name("berth"))
SRC = Path(__file__).resolve().parents[2] / "berth"
HUB_SITE = "/opt/venv/lib/python3.11/site-packages/berth"
BERTH_YAML = f"""
backend: swarm
network: berth-swarmup-net
hub:
  data_volume: berth-swarmup-data
storage:
  volume_name_template: berth-swarmup-{{username}}
images:
  default: {NOTEBOOK}
limits:
  memory: 256M
services:
  - name: swarmup-test
    token: {TOKEN}
    scopes: [admin:users, admin:servers, access:servers, read:users, admin:server_state]
"""


def hub_image_with_this_source(cluster) -> None:
    """berth/hub with this worktree's `berth` package on the manager (built there, never on the
    shared host engine), labelled with this source's digest so `berth up` does not rebuild it."""
    from nested_engine import copy_image

    copy_image(cluster.host, cluster.manager.client, "berth/hub:latest")
    dockerfile = (
        f"FROM berth/hub:latest\nCOPY berth {HUB_SITE}\nLABEL {SOURCE_LABEL}={source_digest()}\n"
    ).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(str(SRC), arcname="berth", filter=lambda t: None if "__pycache__" in t.name else t)
    buffer.seek(0)
    cluster.manager.client.images.build(
        fileobj=buffer, custom_context=True, tag="berth/hub:latest", rm=True
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator:
    from swarm_cluster import copy_image, running_cluster

    with running_cluster(3, with_registry=False) as cluster:
        hub_image_with_this_source(cluster)
        for image in ("berth/registry:latest", NOTEBOOK):
            copy_image(cluster.host, cluster.manager.client, image)
        yield cluster


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("swarmup") / "berth.yaml"
    path.write_text(BERTH_YAML)
    return path


def berth(cluster, config: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "DOCKER_HOST": f"tcp://{cluster.manager.address}:2375", "NO_COLOR": "1"}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [BERTH, *args, "--config", str(config)],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="module")
def deployed(cluster, config_file) -> dict:
    result = berth(cluster, config_file, "up")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout + result.stderr
    password = re.search(r"admin: admin\s+one-time password: (\S+)", out)
    assert password, out
    return {"url": f"https://{cluster.manager.address}:{PORT}", "password": password.group(1)}


def server_node(cluster, user: str) -> str:
    client = cluster.manager.client
    found = client.services.list(filters={"label": [f"berth.user={user}", "berth.prefix=berth"]})
    assert len(found) == 1, [s.name for s in found]
    tasks = [t for t in found[0].tasks() if t["Status"]["State"] == "running"]
    assert len(tasks) == 1, tasks
    return str(client.nodes.get(tasks[0]["NodeID"]).attrs["Description"]["Hostname"])


def test_berth_up_runs_the_hub_proxy_and_registry_as_services_on_the_manager(cluster, deployed):
    client = cluster.manager.client
    services = {s.name: s for s in client.services.list()}
    for name in ("berth-hub", "berth-proxy", "berth-registry"):
        tasks = [t for t in services[name].tasks() if t["Status"]["State"] == "running"]
        assert len(tasks) == 1 and tasks[0]["NodeID"] == cluster.manager.node_id, name
    secrets = {s.name for s in client.secrets.list()}
    assert any(name.startswith("berth-secret-service-swarmup-test-") for name in secrets)
    network = client.networks.get("berth-swarmup-net").attrs
    assert network["Driver"] == "overlay" and network["Attachable"]
    # The proxy answers on the manager's published port; the hub behind it.
    assert requests.get(f"{deployed['url']}/hub/api/", verify=False, timeout=30).ok
    # The notebook image is in Berth's registry: the workers pull it from there (now, so that
    # the spawns below are not timed against a first pull on this slow machine).
    for worker in cluster.nodes[1:]:
        worker.client.images.pull(f"{cluster.manager.name}:5000/{NOTEBOOK}")


def test_secrets_reach_the_hub_only_and_the_proxy_has_no_engine(cluster, deployed):
    """What someone who may inspect services (or who took over the proxy) would look for."""
    import json

    client = cluster.manager.client
    for service in client.services.list():
        assert TOKEN not in json.dumps(service.attrs), service.name
    for config in client.configs.list():
        assert TOKEN not in json.dumps(config.attrs), config.name
    hub = client.containers.list(filters={"label": "com.docker.swarm.service.name=berth-hub"})[0]
    assert TOKEN not in json.dumps(hub.attrs)  # not in the environment or anything inspect shows
    found = hub.exec_run(["stat", "-c", "%a %u", "/run/secrets/service-swarmup-test.token"])
    assert found.output.decode().split() == ["400", "1000"]
    proxy = client.containers.list(filters={"label": "com.docker.swarm.service.name=berth-proxy"})[
        0
    ]
    wanted = (
        "/var/run/docker.sock", "/run/berth-engine/docker.sock",
        "/run/secrets/service-swarmup-test.token", "/srv/berth/data/secrets/cookie_secret",
        "/srv/berth/data/jupyterhub.sqlite",
    )  # fmt: skip
    probe = f"import os; print([p for p in {wanted!r} if os.path.exists(p)])"
    ran = hub.exec_run(["python3", "-c", probe])
    in_hub = ran.output.decode(errors="replace").strip()
    assert ran.exit_code == 0, (ran.exit_code, in_hub)
    # The probe finds them where they are: the hub has the engine guard's socket, not the
    # manager's (see test_a_hostile_hub_reaches_only_its_users_services_through_the_guard).
    assert in_hub == str(list(wanted[1:])), in_hub
    assert proxy.exec_run(["python3", "-c", probe]).output.decode().strip() == "[]"
    # ... and it cannot write where it runs.
    assert proxy.exec_run(["touch", "/srv/berth/proxy/x"]).exit_code != 0


def test_berth_up_again_changes_nothing(cluster, config_file, deployed):
    client = cluster.manager.client
    before = {s.name: s.id for s in client.services.list()}
    result = berth(cluster, config_file, "up")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing changed" in result.stdout + result.stderr
    assert {s.name: s.id for s in client.services.list()} == before


def test_servers_spread_over_the_nodes_and_status_shows_where(cluster, config_file, deployed):
    for user in ("ann", "bob", "cyd"):
        spawn(deployed, user)
    nodes = {user: server_node(cluster, user) for user in ("ann", "bob", "cyd")}
    assert len(set(nodes.values())) >= 2, nodes
    result = berth(cluster, config_file, "status", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for user, node in nodes.items():
        assert re.search(rf"{user}\s.*running\s.*{node}", result.stdout), result.stdout
    for node in cluster.nodes:
        assert re.search(rf"{node.name}\s.*ready\s.*active", result.stdout), result.stdout
    out = result.stdout + result.stderr  # the services go to stderr, the tables to stdout
    assert "berth-fence: running on 3 of 3 ready nodes" in out, out
    logs = berth(cluster, config_file, "logs", "--tail", "5", timeout=120)
    assert logs.returncode == 0 and logs.stdout.strip(), logs.stderr


def server_container(cluster, user: str):
    for node in cluster.nodes:
        found = node.client.containers.list(
            filters={"label": [f"berth.user={user}", "berth.prefix=berth"]}
        )
        if found:
            return found[0]
    raise AssertionError(f"no container of {user}")


def test_the_overlay_carries_hub_to_server_traffic_only(cluster, deployed):
    """From ann's server (code run in it, as its user): the other servers, the proxy's API
    (8001), the registry and the nodes' engines are closed; the hub's API is open; the proxy
    still reaches every server (checked by `spawn` through the public URL). Fails on main
    before berth-fence: every one of them answered."""
    import json

    client = cluster.manager.client
    tasks = {}
    for user in ("bob", "cyd"):
        found = client.services.list(
            filters={"label": [f"berth.user={user}", "berth.prefix=berth"]}
        )
        task = next(t for t in found[0].tasks() if t["Status"]["State"] == "running")
        attachment = next(
            a
            for a in task["NetworksAttachments"]
            if a["Network"]["Spec"]["Name"] == "berth-swarmup-net"
        )
        tasks[user] = attachment["Addresses"][0].split("/")[0]
    targets = {
        "hub_api": ["berth-hub", 8081],
        "bob": [tasks["bob"], 8888],
        "cyd": [tasks["cyd"], 8888],
        "proxy_api": ["berth-proxy", 8001],
        "proxy_public": ["berth-proxy", 8443],
        "registry": [cluster.manager.address, 5000],
        "manager_engine": [cluster.manager.address, 2375],
        "worker_engine": [cluster.nodes[2].address, 2375],
    }
    ann = server_container(cluster, "ann")
    ran = ann.exec_run(["python3", "-c", PROBE_ARGV, json.dumps(targets)], user="1000")
    assert ran.exit_code == 0, ran.output
    found = json.loads(ran.output.decode().strip().splitlines()[-1])
    assert found.pop("hub_api") == "open", found
    assert all(result != "open" for result in found.values()), found
    fences = client.services.get("berth-fence")
    assert fences.attrs["Spec"]["Mode"] == {"Global": {}}
    assert not fences.attrs.get("Endpoint", {}).get("Ports")  # nothing published


def test_a_drained_node_gets_no_new_servers(cluster, deployed):
    drained = cluster.nodes[2]
    cluster.drain(drained)
    try:
        for user in ("dan", "eve"):
            spawn(deployed, user)
            assert server_node(cluster, user) != drained.name
    finally:
        cluster.set_availability(drained, "active")


def test_a_restarted_hub_keeps_users_logged_in_and_servers_running(cluster, deployed):
    # (Draining a node above stopped the servers on it: that is what drain means in Swarm. The
    # Swarm starts such a server again elsewhere, sooner or later, where it answers; the hub
    # removes a server moved behind its back when it polls. So only servers that never had a
    # task on the drained node count: one counted as "not moved yet" raced the Swarm.)
    client = cluster.manager.client
    drained = cluster.nodes[2].name

    def moved(user: str) -> bool:
        labels = [f"berth.user={user}", "berth.prefix=berth"]
        found = client.services.list(filters={"label": labels})
        tasks = [task for service in found for task in service.tasks()]
        nodes = {
            client.nodes.get(t["NodeID"]).attrs["Description"]["Hostname"]
            for t in tasks
            if t.get("NodeID")
        }
        return len(tasks) > 1 or drained in nodes

    users = ("ann", "bob", "cyd", "dan", "eve")
    alive = [user for user in users if answers(deployed, user) and not moved(user)]
    assert len(alive) >= 3, alive

    def services_of_alive() -> dict[str, str]:
        found = client.services.list(filters={"label": "berth.prefix=berth"})
        by_user = {s.attrs["Spec"]["Labels"]["berth.user"]: s.id for s in found}
        return {user: by_user.get(user, "") for user in alive}

    servers = services_of_alive()
    session = login(deployed, "admin", deployed["password"])
    assert logged_in(deployed, session)
    label = {"label": "com.docker.swarm.service.name=berth-hub"}
    hub = client.containers.list(filters=label)
    assert len(hub) == 1
    hub[0].kill()  # the Swarm starts a new task; the data volume keeps the database and secrets
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        new = client.containers.list(filters=label)
        health = (new[0].attrs["State"].get("Health") or {}).get("Status") if new else None
        if new and new[0].id != hub[0].id and health == "healthy":
            break
        time.sleep(1)
    else:
        raise AssertionError("the hub service did not come back")
    assert logged_in(deployed, session)
    # The same services (not new ones); a server the drain stopped is cleaned up by the hub.
    assert services_of_alive() == servers
    deadline = time.monotonic() + 60  # the hub re-adds its routes to the proxy as it starts
    while time.monotonic() < deadline and not all(answers(deployed, u) for u in alive):
        time.sleep(2)
    assert [user for user in alive if answers(deployed, user)] == alive


def test_a_hostile_hub_reaches_only_its_users_services_through_the_guard(cluster, deployed):
    """From inside the hub's container, as an attacker who took it over: every call through
    the only engine socket the hub has. Fails on main (checked: no berth-engine-guard service;
    the hub holds the manager's own /var/run/docker.sock, which judges nothing)."""
    import json

    client = cluster.manager.client
    guard = client.containers.list(
        filters={"label": "com.docker.swarm.service.name=berth-engine-guard"}
    )
    assert len(guard) == 1
    # The spawner's own calls (the spawns, polls and stops above) were all allowed.
    before = guard[0].logs().decode(errors="replace")
    assert "refused" not in before, before[-3000:]
    hub = client.containers.list(filters={"label": "com.docker.swarm.service.name=berth-hub"})[0]
    proxy = client.containers.list(filters={"label": "com.docker.swarm.service.name=berth-proxy"})[
        0
    ]
    image = f"{cluster.manager.name}:5000/{NOTEBOOK}"
    argv = [image, "berth-swarmup-net", cluster.manager.name, str(proxy.id)]
    run = hub.exec_run(["python3", "-c", HOSTILE_HUB, *argv])
    assert run.exit_code == 0, run.output.decode(errors="replace")[-3000:]
    results = json.loads(run.output.decode().strip().splitlines()[-1])
    assert results.pop("own: inspect berth-ann") == ["allowed", ""]
    assert results.pop("own: its tasks")[0] >= 1
    assert results.pop("own: a server's service") == ["allowed", ""]
    allowed = {name: r for name, r in results.items() if r[0] != 403}
    assert not allowed, allowed
    for attack, (_, message) in results.items():
        assert message.startswith("berth engine guard: "), (attack, message)
        assert WHY_REFUSED.get(attack, "the hub may not call") in message, (attack, message)
    # ... and nothing happened: no service of mallory's, every node active, Berth's services on.
    assert not client.services.list(filters={"name": "berth-mallory"})
    assert {n.attrs["Spec"]["Availability"] for n in client.nodes.list()} == {"active"}
    names = {s.name for s in client.services.list()}
    assert {"berth-hub", "berth-proxy", "berth-registry", "berth-engine-guard"} <= names
    after = guard[0].logs().decode(errors="replace")
    assert after.count("refused") >= len(results)  # the guard says what it refused


def test_berth_down_removes_the_services_and_keeps_the_volumes(cluster, config_file, deployed):
    result = berth(cluster, config_file, "down", timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    client = cluster.manager.client
    assert not client.services.list()
    assert not client.secrets.list(filters={"label": "berth.deploy.stack"})
    names = {v.name for v in client.volumes.list()}
    assert {"berth-swarmup-data", "berth-swarmup-data-registry"} <= names


def test_up_and_down_leave_a_service_that_is_not_berths_alone(cluster, config_file, deployed):
    """Someone else's service that happens to be called berth-proxy (no Berth stack label):
    `berth up` and `berth down` each refuse with one error naming it, change nothing, and leave
    it running. Fails on main: up removed it to make its own, and down removed it by name."""
    client = cluster.manager.client
    foreign = client.services.create(
        NOTEBOOK,
        ["sleep", "600"],
        name="berth-proxy",
        constraints=[f"node.hostname=={cluster.manager.name}"],
    )
    try:
        for command in ("up", "down"):
            result = berth(cluster, config_file, command, timeout=300)
            assert result.returncode != 0, result.stdout + result.stderr
            assert "berth-proxy" in result.stderr and "not Berth's" in result.stderr
            foreign.reload()
            assert foreign.attrs["Spec"]["Labels"] == {}
        assert {s.name for s in client.services.list()} == {"berth-proxy"}
    finally:
        foreign.remove()
