"""The Swarm spawner on a real 3-node Swarm (tests/swarm_cluster.py), driven through a real hub.

Heavy (the cluster, its registry and the hub take a few minutes to set up): ``full`` tier, run by
``scripts/test.sh --full``. The tests share one cluster and run in file order; the last one kills
a worker node.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import pytest
from hub_harness import default_image, image_available
from swarm_fence_probes import attack_from, attack_targets, netns_rules, node_container, server_ip

from berth import names

pytestmark = [
    pytest.mark.full,
    pytest.mark.skipif(not image_available(), reason="notebook image not built"),
    pytest.mark.skipif(not image_available("berth/hub:latest"), reason="hub image not built"),
    pytest.mark.skipif(
        not image_available("berth/registry:latest"), reason="registry image not built"
    ),
]

SPAWNER_CONFIG = """
def per_user(spawner):
    name = spawner.user.name
    if name.startswith("huge"):
        spawner.mem_guarantee = "100G"
    if name.startswith("dies"):
        spawner.cmd = ["sh", "-c", "echo bye; exit 3"]
    if name.startswith("vol") or name.startswith("shared"):
        spawner.volumes = {"{prefix}-{username}": "/home/jovyan/work"}
        spawner.placement_constraints = ["node.role == worker"]
    if name.startswith("named"):  # servers.named: a volume per server
        spawner.volumes = {"{prefix}-{username}{server_suffix}": "/home/jovyan/work"}
        spawner.placement_constraints = ["node.role == worker"]
    if name.startswith("shared"):  # a host directory in every node stands in for NFS
        spawner.volume_policy = "shared"
        spawner.volume_driver_options = {
            "type": "none", "o": "bind", "device": "/srv/berth-shared/{username}",
        }

    if name in ("fence-a", "fence-c"):  # two servers on one node, B on another
        spawner.placement_constraints = ["node.role == manager"]
    if name == "fence-b":
        spawner.placement_constraints = ["node.role == worker"]
    if name.startswith("nofence"):
        spawner.fence_wait = 4
    if name == "fence-d":  # waits while the test checks it is not running yet
        spawner.fence_wait = 300

c.Spawner.pre_spawn_hook = per_user
c.SwarmSpawner.schedule_timeout = 5
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator:
    from swarm_cluster import running_cluster

    with running_cluster(3) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def hub(cluster) -> Iterator:
    from swarm_hub import SwarmHub

    image = cluster.publish(default_image())
    # The test hub runs its proxy in its own container: the hub is also the relay.
    cluster.start_fence("berth-swarm-hub")
    hub = SwarmHub(cluster, image, SPAWNER_CONFIG)
    try:
        yield hub.start()
    finally:
        hub.cleanup()


def failed_spawn_message(hub, user: str) -> str:
    """Start ``user``'s server, expecting a failure: the message it failed with."""
    hub.create_user(user)
    r = hub.request_spawn(user)
    if r.status_code >= 400:
        return str(r.json().get("message", r.text))
    events = hub.progress(user)
    assert events and events[-1].get("failed"), events
    return str(events[-1]["message"])


def test_servers_spread_over_the_nodes_with_task_progress(hub, cluster) -> None:
    users = ["spread-a", "spread-b", "spread-c"]
    for user in users:
        hub.create_user(user)
        assert hub.request_spawn(user).status_code in {201, 202}
    events = hub.progress(users[0])
    for user in users:
        hub.wait_ready(user, timeout=300)
    # Swarm's default spread: fewest tasks per node (the registry's task counts on node-0).
    per_node = {n.name: 0 for n in cluster.nodes}
    for service in cluster.manager.client.services.list():
        for task in service.tasks(filters={"desired-state": "running"}):
            name = cluster.manager.client.nodes.get(task["NodeID"]).attrs["Description"]
            per_node[name["Hostname"]] += 1
    assert max(per_node.values()) - min(per_node.values()) <= 1, per_node
    assert len({hub.server_node(user) for user in users}) >= 2
    messages = [e["message"] for e in events]
    assert any(m.startswith("Running on node") for m in messages), messages
    assert events[-1]["ready"], events[-1]
    # the proxy reaches the server: the hub routes over the overlay
    out = hub.execute(users[0], "import os; print(os.environ['JUPYTERHUB_USER'])")
    assert out.strip() == users[0]
    for user in users:
        hub.stop(user)


def test_overlay_carries_hub_to_server_traffic_only(hub, cluster) -> None:
    hub.spawn("overlay-a")
    service = hub.service("overlay-a")
    assert service.attrs["Spec"]["EndpointSpec"] == {"Mode": "dnsrr"}
    assert not service.attrs.get("Endpoint", {}).get("Ports")  # nothing published anywhere
    address = next(t for t in service.tasks() if t["Status"]["State"] == "running")[
        "NetworksAttachments"
    ]
    overlay = [a for a in address if a["Network"]["Spec"]["Name"] == "berth-swarm-overlay"]
    assert len(address) == len(overlay) == 1, address  # on the overlay, and nowhere else
    ip = overlay[0]["Addresses"][0].split("/")[0]
    # The proxy routes the user's URL to that overlay address (never to a node's address).
    routes = hub.api("GET", "/proxy").json()
    assert routes["/user/overlay-a/"]["target"] == f"http://{ip}:8888", routes
    # and the server reaches the hub over the overlay, by the hub container's name there
    env = service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Env"]
    assert "JUPYTERHUB_API_URL=http://berth-swarm-hub:8081/hub/api" in env, env
    hub.stop("overlay-a")


# -- berth-fence: the overlay carries hub <-> server traffic only ---------------------------------


@pytest.fixture(scope="module")
def fenced_trio(hub, cluster) -> dict[str, str]:
    """Servers A and C on the manager, B on a worker; B also listens on port 9999."""
    for user in ("fence-a", "fence-b", "fence-c"):
        hub.create_user(user)
        assert hub.request_spawn(user).status_code in {201, 202}
    for user in ("fence-a", "fence-b", "fence-c"):
        hub.wait_ready(user, timeout=300)
    assert hub.server_node("fence-a") == hub.server_node("fence-c") == cluster.manager.name
    assert hub.server_node("fence-b") != cluster.manager.name
    hub.execute(
        "fence-b", "import subprocess; subprocess.Popen(['python3', '-m', 'http.server', '9999'])"
    )
    return {user: server_ip(hub, user) for user in ("fence-a", "fence-b", "fence-c")}


def test_a_server_reaches_the_hub_api_and_nothing_else_on_the_swarm(hub, cluster, fenced_trio):
    """From A's server: B's and C's ports, the hub's other port, the registry (by the manager's
    address and by the node's gateway) and the nodes' engines are closed; the hub's API is open.
    Fails on main before berth-fence: every one of them answered."""
    found = attack_from(hub, cluster, "fence-a", {
        **attack_targets(cluster, fenced_trio), "hub_api": ("berth-swarm-hub", 8081),
    })  # fmt: skip
    assert found.pop("hub_api") == "open", found
    assert all(result != "open" for result in found.values()), found
    # The proxy still reaches every server (their pages load), and B still reaches the hub.
    for user in fenced_trio:
        assert hub.execute(user, "print(6 * 7)").strip() == "42"
    found = attack_from(hub, cluster, "fence-b", {"a_server": (fenced_trio["fence-a"], 8888)})
    assert found == {"a_server": "timeout", "gateway_registry": "timeout"}, found


def test_a_restarted_fence_writes_the_rules_again(hub, cluster, fenced_trio):
    """The rules lost (flushed by hand in A's namespace while the fence is down): A reaches the
    registry, as on main. The fence started again finds every server and fences it again."""
    cluster.stop_fence()
    node, container = node_container(cluster, "fence-a")
    pid = str(container.attrs["State"]["Pid"])
    flushed = node.container.exec_run(
        ["nsenter", "-t", pid, "-n", "sh", "-c", "iptables-nft -F && iptables-nft -X"]
    )
    assert flushed.exit_code == 0, flushed.output
    target = {"registry": (cluster.manager.address, 5000)}
    assert attack_from(hub, cluster, "fence-a", target)["registry"] == "open"
    cluster.start_fence("berth-swarm-hub")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "BERTH-FENCE-OUT" not in netns_rules(cluster, "fence-a"):
        time.sleep(1)
    assert "-A OUTPUT -j BERTH-FENCE-OUT" in netns_rules(cluster, "fence-a"), cluster.fence_logs()
    assert attack_from(hub, cluster, "fence-a", target)["registry"] != "open"


def test_a_new_server_runs_nothing_until_it_is_fenced(hub, cluster, fenced_trio):
    """Without the fence, a new server's task runs but its command waits (the hub has no route
    to it, nothing listens); one left unfenced for its `fence_wait` fails naming the fence.
    The fence back: the waiting server is fenced, then starts, then is routed."""
    cluster.stop_fence()
    try:
        message = failed_spawn_message(hub, "nofence-a")
        assert "berth-fence did not fence its network" in message, message
        hub.create_user("fence-d")
        assert hub.request_spawn("fence-d").status_code in {201, 202}
        deadline = time.monotonic() + 120
        container = None
        while time.monotonic() < deadline and container is None:
            with contextlib.suppress(AssertionError):
                container = node_container(cluster, "fence-d")[1]
            time.sleep(1)
        assert container is not None
        time.sleep(5)
        processes = " ".join(" ".join(p) for p in container.top()["Processes"])
        assert "jupyterhub-singleuser" not in processes and "python3 -c" in processes, processes
        assert "BERTH-FENCE" not in netns_rules(cluster, "fence-d")
        assert "/user/fence-d/" not in hub.api("GET", "/proxy").json()
        assert not (hub.user_model("fence-d")["servers"].get("") or {}).get("ready")
    finally:
        cluster.start_fence("berth-swarm-hub")
    hub.wait_ready("fence-d", timeout=120)
    assert "-A OUTPUT -j BERTH-FENCE-OUT" in netns_rules(cluster, "fence-d")
    found = attack_from(hub, cluster, "fence-d", attack_targets(cluster, fenced_trio))
    assert all(result != "open" for result in found.values()), found
    for user in ("fence-a", "fence-b", "fence-c", "fence-d"):
        hub.stop(user)


def test_a_restarted_hub_finds_its_servers(hub) -> None:
    """The state in the hub's database (service and task ids) is enough to find a server again."""
    hub.spawn("restart-a")
    node = hub.server_node("restart-a")
    hub.restart_hub()
    hub.wait_ready("restart-a", timeout=120)
    # The restarted hub answers once init_spawners_timeout (10 s) has passed even if its check
    # of the server (engine calls across the cluster) has not ended: pending until then.
    deadline = time.monotonic() + 120
    while not (hub.user_model("restart-a")["servers"].get("") or {}).get("ready"):
        assert time.monotonic() < deadline, hub.user_model("restart-a")
        time.sleep(1)
    assert hub.server_node("restart-a") == node  # the same task, not a new one
    out = hub.execute("restart-a", "print(2 + 2)")
    assert out.strip() == "4"
    hub.stop("restart-a")


def test_a_drained_node_gets_no_new_servers(hub, cluster) -> None:
    drained = cluster.nodes[1]
    cluster.drain(drained)
    try:
        users = ["drain-a", "drain-b", "drain-c"]
        for user in users:
            hub.create_user(user)
            assert hub.request_spawn(user).status_code in {201, 202}
        for user in users:
            hub.wait_ready(user, timeout=300)
        nodes = [hub.server_node(user) for user in users]
        assert drained.name not in nodes, nodes
    finally:
        cluster.set_availability(drained, "active")
    for user in users:
        hub.stop(user)


def test_no_room_anywhere_fails_with_the_schedulers_reason(hub) -> None:
    message = failed_spawn_message(hub, "huge-a")
    assert "no node can run this server now" in message, message
    assert "not enough free memory or CPU on 3 nodes" in message, message
    assert "100 GiB of memory" in message, message
    assert hub.cluster.manager.client.services.list(filters={"label": "berth.user=huge-a"}) == []


def test_a_task_that_dies_is_reported_at_once(hub) -> None:
    # The task's own exit, not JupyterHub's start timeout ("did not start in 180 seconds").
    message = failed_spawn_message(hub, "dies-a")
    assert "exited" in message and "status 3" in message, message


def wait_server_gone(hub, user: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and hub.user_model(user)["servers"]:
        time.sleep(2)
    assert not hub.user_model(user)["servers"], f"the hub still lists {user}'s server"


def test_named_servers_are_services_of_their_own_with_their_own_volumes(hub, cluster) -> None:
    """servers.named on Swarm: a named server is a service of its own (its name carries the
    server suffix) with its own volume, beside the default server; a file in one server's
    volume is not in the other's. Fails on main before this change only in berth.yaml, which
    refused servers.named with backend: swarm."""
    user = "named-a"
    hub.spawn(user)
    hub.spawn(user, "gpu")
    default, named = hub.service(user), hub.service(user, "gpu")
    assert named.name == default.name + "_gpu"
    mounts = {
        server: [m["Source"] for m in svc.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Mounts"]]
        for server, svc in (("", default), ("gpu", named))
    }
    base = default.name  # {prefix}-{username}: the volume template is the name template here
    assert base.endswith("-" + names.escape(user))
    assert mounts == {"": [base], "gpu": [base + "_gpu"]}
    hub.execute(user, "open('/home/jovyan/work/mine.txt', 'w').write('gpu')", server="gpu")
    check = "import os; print(os.path.exists('/home/jovyan/work/mine.txt'))"
    assert hub.execute(user, check).strip() == "False"
    assert hub.execute(user, check, server="gpu").strip() == "True"
    hub.stop(user, "gpu")
    hub.stop(user)


def test_shared_volume_follows_the_user_to_another_node(hub, cluster) -> None:
    """volume_policy 'shared': the user's files are on shared storage, so when their node is
    drained (which stops the server: the hub notices) they start again elsewhere with them."""
    user = "shared-a"
    home = cluster.shared_dir / names.escape(user)  # what {username} renders to
    home.mkdir()
    os.chown(home, 1000, 100)
    hub.spawn(user)
    first = hub.server_node(user)
    hub.execute(user, "open('/home/jovyan/work/kept.txt', 'w').write('shared')")
    assert (home / "kept.txt").read_text() == "shared"
    assert "volume_node" not in hub.state(user)  # nothing to pin to
    node = next(n for n in cluster.nodes if n.name == first)
    cluster.drain(node)
    try:
        wait_server_gone(hub, user)
        hub.spawn(user)
        assert hub.server_node(user) != first
        out = hub.execute(user, "print(open('/home/jovyan/work/kept.txt').read())")
        assert out.strip() == "shared"
        hub.stop(user)
    finally:
        cluster.set_availability(node, "active")


def test_local_volume_pins_the_server_to_its_node_and_a_dead_node_is_noticed(hub, cluster):
    """With the local driver, the second start runs where the files are; when that node dies the
    hub notices, and the user gets a clear refusal instead of an empty home elsewhere."""
    user = "vol-a"
    hub.spawn(user)
    first = hub.server_node(user)
    hub.execute(user, "open('/home/jovyan/work/kept.txt', 'w').write('mine')")
    hub.stop(user)
    hub.spawn(user)
    assert hub.server_node(user) == first
    assert hub.execute(user, "print(open('/home/jovyan/work/kept.txt').read())").strip() == "mine"
    assert hub.state(user).get("volume_node")

    node = next(n for n in cluster.nodes if n.name == first)
    cluster.kill(node)
    wait_server_gone(hub, user)

    message = failed_spawn_message(hub, user)
    assert f"Your files are on Swarm node {first}" in message, message
    assert "not started on another node" in message, message
    # Everyone else can still start: a user without volumes lands on a live node.
    hub.spawn("after-kill")
    assert hub.server_node("after-kill") != first
    with contextlib.suppress(Exception):
        hub.stop("after-kill")
