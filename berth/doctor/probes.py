"""`berth doctor`'s probes: short-lived, unprivileged containers that look at the service the
way a user server would (or at an image, or a volume), and report plain facts. Each is
removed afterwards; none has capabilities, and all carry Berth's helper label."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import docker
from docker.errors import APIError, ImageNotFound, NotFound

from berth.doctor.hub_checks import HubReachFacts, ImageFacts, VolumeFacts, VolumesFacts
from berth.labels import LABEL_MANAGED, LABEL_ROLE
from berth.spawner.specs import NO_NEW_PRIVILEGES

ROLE_PROBE = "doctor-probe"
PROBE_TIMEOUT = 60
VOLUMES_PER_PROBE = 40

# Runs in the hub image on the users' network, as a user server would: asks for the hub's API.
HUB_PROBE = r"""
import json, socket, sys, urllib.error, urllib.request
url = sys.argv[1]
def say(outcome, detail=""):
    print(json.dumps({"outcome": outcome, "detail": detail})); sys.exit(0)
try:
    with urllib.request.urlopen(url, timeout=8) as answer:
        say("ok" if answer.status == 200 else "http", f"HTTP {answer.status}")
except urllib.error.HTTPError as exc:
    say("http", f"HTTP {exc.code}")
except urllib.error.URLError as exc:
    reason = exc.reason
    if isinstance(reason, socket.gaierror):
        say("dns", "the host name does not resolve")
    if isinstance(reason, ConnectionRefusedError):
        say("refused", "connection refused")
    if isinstance(reason, (TimeoutError, socket.timeout)):
        say("timeout", "no answer within 8 s")
    say("other", str(reason))
except (TimeoutError, socket.timeout):
    say("timeout", "no answer within 8 s")
except OSError as exc:
    say("other", str(exc))
"""


def _base(image: str) -> dict[str, Any]:
    return {
        "image": image,
        "name": f"berth-doctor-{uuid.uuid4().hex[:12]}",
        "cap_drop": ["ALL"],
        "security_opt": [NO_NEW_PRIVILEGES],
        "mem_limit": "256m",
        "pids_limit": 128,
        "labels": {LABEL_MANAGED: "true", LABEL_ROLE: ROLE_PROBE},
        "detach": True,
    }


@contextlib.contextmanager
def _container(client: docker.DockerClient, **kwargs: Any) -> Iterator[Any]:
    container = client.containers.create(**kwargs)
    try:
        yield container
    finally:
        with contextlib.suppress(NotFound, APIError):
            container.remove(force=True)


def _run(container: Any) -> tuple[int, str, str]:
    container.start()
    status = container.wait(timeout=PROBE_TIMEOUT).get("StatusCode", -1)
    out = container.logs(stdout=True, stderr=False).decode(errors="replace")
    err = container.logs(stdout=False, stderr=True).decode(errors="replace")
    return status, out, err


def hub_reach(client: docker.DockerClient, image: str, network: str, url: str) -> HubReachFacts:
    """Ask for `url` from a container on `network` that gets an address the way a user server
    does (the engine's range for user containers), as an unprivileged user."""
    kwargs = _base(image)
    kwargs.update(
        entrypoint=["python3", "-c", HUB_PROBE],
        command=[url],
        user="1000:100",
        network=network,
    )
    try:
        with _container(client, **kwargs) as probe:
            status, out, err = _run(probe)
    except NotFound as exc:
        return HubReachFacts(
            url,
            "no-hub",
            f"the hub runs, but the network {network} does not exist ({exc.explanation}): "
            "is this the berth.yaml of the running service?",
        )
    try:
        answer = json.loads(out.strip().splitlines()[-1])
        return HubReachFacts(url, answer["outcome"], answer.get("detail", ""))
    except (ValueError, IndexError, KeyError):
        return HubReachFacts(url, "other", f"the probe failed ({status}): {err.strip()[-300:]}")


def singleuser_version(client: docker.DockerClient, image: str) -> ImageFacts:
    """`jupyterhub-singleuser --version` in the image, with no network and no capabilities."""
    try:
        client.images.get(image)
    except ImageNotFound:
        return ImageFacts(image, present=False)
    kwargs = _base(image)
    kwargs.update(entrypoint=["jupyterhub-singleuser"], command=["--version"], network_mode="none")
    try:
        with _container(client, **kwargs) as probe:
            status, out, err = _run(probe)
    except APIError as exc:  # the engine refuses to start an entrypoint it cannot find
        return ImageFacts(image, True, None, _short(exc.explanation or str(exc)))
    if status != 0:
        return ImageFacts(image, True, None, _short(err or out or f"exit status {status}"))
    return ImageFacts(image, True, out.strip().splitlines()[-1] if out.strip() else "")


def _short(text: str) -> str:
    text = " ".join(text.split())
    if "executable file not found" in text or "no such file or directory" in text:
        return "no jupyterhub-singleuser command in it"
    return text[-200:]


def volume_owners(client: docker.DockerClient, image: str, names: list[str]) -> VolumesFacts:
    """Owner and mode of each volume's root, read by an unprivileged probe (read-only mounts;
    `stat` of a mount point needs no permission on it)."""
    found: list[VolumeFacts] = []
    for start in range(0, len(names), VOLUMES_PER_PROBE):
        batch = names[start : start + VOLUMES_PER_PROBE]
        mounts = {name: {"bind": f"/v/{i}", "mode": "ro"} for i, name in enumerate(batch)}
        kwargs = _base(image)
        kwargs.update(
            entrypoint=["stat", "-c", "%u %g %a"],
            command=[f"/v/{i}" for i in range(len(batch))],
            user="1000:100",
            network_mode="none",
            volumes=mounts,
        )
        try:
            with _container(client, **kwargs) as probe:
                status, out, err = _run(probe)
        except APIError as exc:
            return VolumesFacts(error=f"cannot read the volumes: {exc.explanation}", image=image)
        lines = out.split()
        if status != 0 or len(lines) != 3 * len(batch):
            return VolumesFacts(error=f"cannot read the volumes: {err.strip()[-200:]}", image=image)
        for i, name in enumerate(batch):
            uid, gid, mode = lines[3 * i : 3 * i + 3]
            found.append(VolumeFacts(name, int(uid), int(gid), int(mode, 8)))
    return VolumesFacts(tuple(found), image=image)
