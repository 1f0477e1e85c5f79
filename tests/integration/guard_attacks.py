"""The attacks a compromised hub would make on the engine, and the guard's reason for refusing
each: the table test_guard.py runs through the guard, from the test process and from inside a
container of the hub image (ATTACK_SCRIPT, with the table as its argument)."""

from __future__ import annotations

from typing import Any

from guard_lab import OURS, PREFIX, RUN

ATTACKS: dict[str, dict[str, Any]] = {
    "privileged": {"host_config": {"privileged": True}},
    "cap-sys-admin": {"host_config": {"cap_add": ["SYS_ADMIN"]}},
    "net-host": {"host_config": {"network_mode": "host"}},
    "pid-host": {"host_config": {"pid_mode": "host"}},
    "ipc-host": {"host_config": {"ipc_mode": "host"}},
    "bind-root": {"host_config": {"binds": ["/:/host"]}},
    "bind-etc": {"host_config": {"binds": ["/etc:/host-etc:ro"]}},
    "bind-socket": {"host_config": {"binds": ["/var/run/docker.sock:/var/run/docker.sock"]}},
    "unlabelled": {"labels": {}},
}
REASONS = {
    "privileged": "privileged containers are not allowed",
    "cap-sys-admin": "capabilities SYS_ADMIN are not allowed (CapAdd)",
    "net-host": "network mode 'host' shares a namespace outside the container",
    "pid-host": "pidmode 'host' is not allowed (only the container's own namespace)",
    "ipc-host": "ipcmode 'host' is not allowed (only the container's own namespace)",
    "bind-root": "bind mount of host path '/' is not allowed",
    "bind-etc": "bind mount of host path '/etc' is not allowed",
    "bind-socket": "bind mount of host path '/var/run/docker.sock' is not allowed",
    "unlabelled": f"containers must carry the labels berth.managed=true and berth.prefix={PREFIX}",
}


SECRET = f"s3cret-{RUN}"


def create_attack(api: Any, image: str, name: str, attack: dict[str, Any]) -> Any:
    host_config = {"cap_drop": ["ALL"], **attack.get("host_config", {})}
    return api.create_container(
        image,
        name=name,
        labels=attack.get("labels", OURS),
        host_config=api.create_host_config(**host_config),
        command=["sleep", "60"],
        environment={"BERTH_GUARD_TEST_SECRET": SECRET},
    )


ATTACK_SCRIPT = """
import json, sys, docker
api = docker.APIClient(base_url="unix:///run/berth-engine/docker.sock", version="auto")
results = {}
for key, attack in json.loads(sys.argv[1]).items():
    host_config = {"cap_drop": ["ALL"], **attack.get("host_config", {})}
    try:
        api.create_container(sys.argv[2], name=sys.argv[3] + "-hub-" + key,
            labels=attack.get("labels", json.loads(sys.argv[4])),
            host_config=api.create_host_config(**host_config), command=["sleep", "60"])
        results[key] = [201, ""]
    except docker.errors.APIError as exc:
        results[key] = [exc.status_code, exc.explanation]
print(json.dumps(results))
"""
