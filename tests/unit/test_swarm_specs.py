"""The Swarm spawner's pure parts: service JSON out, and task records (captured from the real
3-node test Swarm, tests/unit/data/swarm_tasks/) in."""

from __future__ import annotations

import json
from pathlib import Path

from berth.spawner import specs
from berth.spawner import swarm_specs as ss

TASKS = Path(__file__).parent / "data" / "swarm_tasks"
IDENTITY = specs.Identity("alice", "", "SwarmSpawner", "berth")
LABELS = {
    "berth.managed": "true",
    "berth.role": "single-user",
    "berth.user": "alice",
    "berth.server": "",
    "berth.spawner": "SwarmSpawner",
    "berth.prefix": "berth",
}


def task(name: str) -> dict:
    return json.loads((TASKS / f"{name}.json").read_text())


def test_service_kwargs_as_a_whole() -> None:
    spec = ss.ServiceSpec(
        name="berth-alice",
        image="node-0:5000/berth/base-notebook:latest",
        identity=IDENTITY,
        network_name="berth-overlay",
        environment={"JUPYTERHUB_API_TOKEN": "t"},
        mounts=[
            specs.Mount("berth-alice", "/home/jovyan/work"),
            specs.Mount("/srv/shared", "/home/jovyan/shared", read_only=True),
        ],
        resources=specs.Resources(
            mem_limit=2 * 1024**3, cpu_limit=1.5, mem_guarantee=1024**3, cpu_guarantee=0.5
        ),
        placement=ss.Placement(constraints=["node.labels.big==true"], spread=["node.labels.rack"]),
        pinned_node="n0de1d",
    )
    assert ss.service_create_kwargs(spec) == {
        "name": "berth-alice",
        "labels": LABELS,
        "mode": {"Replicated": {"Replicas": 1}},
        "endpoint_spec": {"Mode": "dnsrr"},
        "task_template": {
            "ContainerSpec": {
                "Image": "node-0:5000/berth/base-notebook:latest",
                "Labels": LABELS,
                "Env": ["JUPYTERHUB_API_TOKEN=t"],
                "Mounts": [
                    {
                        "Type": "volume",
                        "Source": "berth-alice",
                        "Target": "/home/jovyan/work",
                        "ReadOnly": False,
                        "VolumeOptions": {
                            "NoCopy": False,
                            "Labels": {**LABELS, "berth.role": "volume"},
                        },
                    },
                    {
                        "Type": "bind",
                        "Source": "/srv/shared",
                        "Target": "/home/jovyan/shared",
                        "ReadOnly": True,
                    },
                ],
                "CapabilityDrop": ["ALL"],
                "CapabilityAdd": [],
                "Init": False,
                "Healthcheck": {"Test": ["NONE"]},
                "StopGracePeriod": 10 * 10**9,
            },
            "Resources": {
                "Limits": {"MemoryBytes": 2 * 1024**3, "NanoCPUs": 1_500_000_000},
                "Reservations": {"MemoryBytes": 1024**3, "NanoCPUs": 500_000_000},
            },
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
            "Placement": {
                "Constraints": ["node.labels.big==true", "node.id==n0de1d"],
                "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.rack"}}],
            },
            "Networks": [{"Target": "berth-overlay"}],
        },
    }


def test_root_start_command_and_extra_template() -> None:
    spec = ss.ServiceSpec(
        name="s",
        image="i",
        identity=IDENTITY,
        network_name="n",
        command=["start-notebook.py", "--debug"],
        privileges=specs.start_privileges({"NB_UID": "1001"}),
        extra_task_template={"ContainerSpec": {"Hostname": "h"}, "LogDriver": {"Name": "none"}},
    )
    template = ss.task_template(spec)
    cs = template["ContainerSpec"]
    assert cs["Args"] == ["start-notebook.py", "--debug"]  # the CMD; ENTRYPOINT (tini) stays
    assert "Command" not in cs
    assert cs["User"] == "root"
    assert cs["CapabilityAdd"] == ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]
    assert cs["Hostname"] == "h" and cs["Image"] == "i"  # merged, not replaced
    assert template["LogDriver"] == {"Name": "none"}
    assert template["Resources"] == {"Limits": {}, "Reservations": {}}
    assert template["Placement"] == {"Constraints": [], "Preferences": []}


def test_shared_volume_driver_and_templated_options() -> None:
    options = ss.render_driver_options(
        {"type": "nfs", "o": "addr=10.0.0.5,rw", "device": ":/export/{username}"},
        {"username": "alice", "prefix": "berth", "servername": "", "server_suffix": ""},
    )
    mount = ss.mount_json(
        specs.Mount("berth-alice", "/home/jovyan/work"), ss.VolumeDriver("local", options), {}
    )
    assert mount["VolumeOptions"] == {
        "NoCopy": False,
        "Labels": {},
        "DriverConfig": {
            "Name": "local",
            "Options": {"type": "nfs", "o": "addr=10.0.0.5,rw", "device": ":/export/alice"},
        },
    }


def test_volume_labels_name_the_owner_only_for_per_user_volumes() -> None:
    own = ss.volume_labels(IDENTITY, specs.Mount("berth-alice", "/w", per_user=True))
    assert own == {**LABELS, "berth.role": "volume"}
    shared = ss.volume_labels(IDENTITY, specs.Mount("course", "/c", per_user=False))
    assert shared == {
        **LABELS,
        "berth.role": "shared-volume",
        "berth.user": "",
        "berth.spawner": "SwarmSpawner",
    }


def test_running_task_gives_its_overlay_address() -> None:
    record = task("running")
    network_id = record["NetworksAttachments"][0]["Network"]["ID"]
    view = ss.task_view(record, network_id)
    assert view == ss.TaskView(
        state="running",
        message="started",
        error="",
        node_id=record["NodeID"],
        exit_code=0,
        addresses=("10.0.1.19",),
    )
    assert ss.task_view(record, "another-network").addresses == ()
    assert ss.progress_event(view, "node-2") == {
        "progress": 85,
        "message": "Running on node node-2; waiting for the server to answer",
    }


def test_pending_for_resources_says_why_in_plain_words() -> None:
    view = ss.task_view(task("bigmem"))
    assert (view.state, view.node_id) == ("pending", "")
    reserved = ss.describe_reservation(specs.Resources(mem_guarantee=100 * 1024**3))
    assert ss.progress_event(view, reserved=reserved) == {
        "progress": 35,
        "message": "Waiting: no node can run this server now: not enough free memory or CPU "
        "on 3 nodes (it reserves 100 GiB of memory) "
        "[scheduler: no suitable node (insufficient resources on 3 nodes)]",
    }


def test_pending_for_constraints_says_why() -> None:
    assert ss.scheduler_reason(ss.task_view(task("constr")).error) == (
        "no node can run this server now: the placement rules are not met on 3 nodes "
        "[scheduler: no suitable node (scheduling constraints not satisfied on 3 nodes)]"
    )
    mixed = "no suitable node (insufficient resources on 1 node; node is not active on 2 nodes)"
    assert ss.scheduler_reason(mixed, "1 CPU") == (
        "no node can run this server now: not enough free memory or CPU on 1 node; "
        f"drained or paused on 2 nodes (it reserves 1 CPU) [scheduler: {mixed}]"
    )


def test_dead_and_rejected_tasks_are_failures_not_progress() -> None:
    dies = ss.task_view(task("dies"))
    assert ss.progress_event(dies) is None
    assert dies.state in ss.TERMINAL_STATES
    assert ss.failure_message(dies, "node-2") == (
        "The server exited on node node-2 with status 3: task: non-zero exit (3)"
    )
    noimg = ss.task_view(task("noimg"))
    assert noimg.state in ss.TERMINAL_STATES
    assert ss.failure_message(noimg, "node-1") == (
        "Node node-1 could not start the server: "
        "No such image: berth-swarm-8bb276e4-node-0:5000/berth/nothere:latest"
    )


def test_a_server_the_fence_did_not_fence_names_the_fence() -> None:
    view = ss.TaskView(state="failed", node_id="n1", exit_code=75, error="non-zero exit (75)")
    assert ss.failure_message(view, "node-1") == (
        "The server was not started on node node-1: berth-fence did not fence its network in "
        "time. Is the berth-fence service running on every node? (docs/deploy.md)"
    )


def test_current_task_is_the_newest() -> None:
    old = {"CreatedAt": "2026-11-26T17:28:00Z", "Slot": 1, "ID": "old"}
    new = {"CreatedAt": "2026-11-26T17:29:00Z", "Slot": 1, "ID": "new"}
    assert ss.current_task([new, old]) == new
    assert ss.current_task([]) is None
