"""What test_swarm_up.py runs inside the hub's container of a real Swarm deployment, as an
attacker who took the hub over would: every call goes through the only engine socket the hub
has (the Swarm engine guard). HOSTILE_HUB prints {attack: [HTTP status, message]} ("allowed"
for a 2xx); WHY_REFUSED is the guard's reason each attack must be refused with."""

from __future__ import annotations

HOSTILE_HUB = r"""
import json, sys
import docker
from berth.spawner import specs, swarm_specs as ss

image, network, manager, proxy_container = sys.argv[1:5]
api = docker.APIClient(base_url="unix:///run/berth-engine/docker.sock", version="auto")
mallory = specs.Identity(username="mallory", prefix="berth")

def service(**changes):
    spec = ss.ServiceSpec(
        name="berth-mallory", image=image, identity=mallory, network_name=network,
        mounts=(specs.Mount("berth-swarmup-mallory", "/home/jovyan/work"),),
        resources=specs.Resources(mem_limit=256 * 2**20, cpu_limit=1, pids_limit=1024),
    )
    kwargs = ss.service_create_kwargs(spec)
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = kwargs
        for key in parents:
            target = target[key]
        target[last] = value
    return lambda: api.create_service(**kwargs)

def node_id(name):
    return next(n["ID"] for n in api.nodes() if n["Description"]["Hostname"] == name)

def drain():
    node = api.inspect_node(node_id(manager))
    spec = {**node["Spec"], "Availability": "drain"}
    return api.update_node(node["ID"], node["Version"]["Index"], spec)

container = "task_template.ContainerSpec"
attacks = {
    "service bind-mounting /": service(**{f"{container}.Mounts": [
        {"Type": "bind", "Source": "/", "Target": "/host"}]}),
    "service mounting the hub's data volume": service(**{f"{container}.Mounts": [
        {"Type": "volume", "Source": "berth-swarmup-data", "Target": "/x",
         "VolumeOptions": {"Labels": specs.labels(mallory, "volume")}}]}),
    "service with another deployment's labels": service(
        labels={**specs.labels(mallory), "berth.prefix": "other"}),
    "service on the host network": service(**{"task_template.Networks": [{"Target": "host"}]}),
    "service with CAP_SYS_ADMIN": service(**{f"{container}.CapabilityAdd": ["SYS_ADMIN"]}),
    "service with a secret": service(**{f"{container}.Secrets": [{"SecretName": "x"}]}),
    "service on every node": service(mode={"Global": {}}),
    "service publishing a port": service(
        endpoint_spec={"Mode": "vip", "Ports": [{"TargetPort": 22, "PublishedPort": 2222}]}),
    "service without a memory limit": service(**{"task_template.Resources": {}}),
    "service named berth-proxy": service(name="berth-proxy"),
    "list secrets": api.secrets,
    "list configs": api.configs,
    "read the swarm's join tokens": api.inspect_swarm,
    "drain the manager": drain,
    "remove a node": lambda: api.remove_node(node_id(manager), force=True),
    "leave the swarm": lambda: api.leave_swarm(force=True),
    "list all services": api.services,
    "list all tasks": api.tasks,
    "exec into the proxy": lambda: api.exec_create(proxy_container, ["id"]),
    "list containers": api.containers,
}
for name in ("berth-hub", "berth-proxy", "berth-registry", "berth-engine-guard"):
    attacks[f"remove {name}"] = lambda name=name: api.remove_service(name)
    attacks[f"inspect {name}"] = lambda name=name: api.inspect_service(name)
    attacks[f"update {name}"] = lambda name=name: api.update_service(
        name, 1, task_template={"ContainerSpec": {"Image": "debian"}})
results = {}
for attack, call in attacks.items():
    try:
        call()
        results[attack] = ["allowed", ""]
    except docker.errors.APIError as exc:
        results[attack] = [exc.status_code, exc.explanation or ""]
# What the hub's spawner needs still works: its own user's service, tasks and nodes.
ann = api.inspect_service("berth-ann")
results["own: inspect berth-ann"] = ["allowed" if ann["ID"] else "?", ""]
results["own: its tasks"] = [len(api.tasks(filters={"service": ann["ID"]})), ""]
# The spec every attack above changes one thing of is itself allowed (then removed again).
created = service()()
api.remove_service(created["ID"])
results["own: a server's service"] = ["allowed", ""]
print(json.dumps(results))
"""


WHY_REFUSED = {
    "service bind-mounting /": "mounts of type 'bind' are not allowed",
    "service mounting the hub's data volume": "'berth-swarmup-data' is not one of this user's",
    "service with another deployment's labels": "must carry the labels berth.managed=true",
    "service on the host network": "network 'host' is not one the hub may use",
    "service with CAP_SYS_ADMIN": "capabilities SYS_ADMIN are not allowed",
    "service with a secret": "field(s) secrets are not allowed",
    "service on every node": "field(s) global are not allowed",
    "service publishing a port": "a user's service publishes no ports",
    "service without a memory limit": "the memory limit must be set",
    "service named berth-proxy": "'berth-proxy' is not one a user's server may take",
    "list all tasks": "a task listing takes only the filters parameter",
    **{
        f"{verb} {name}": "is not Berth's"
        for verb in ("remove", "inspect")
        for name in ("berth-hub", "berth-proxy", "berth-registry", "berth-engine-guard")
    },
}
