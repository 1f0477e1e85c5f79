"""Named servers in a real `berth up` deployment (hub container, engine guard, Berth's network):
`servers.named` in berth.yaml lets one user run two servers on different images, each with its
own volume, and the limit holds. Fails on main before this change: berth.yaml has no `servers`."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from deployment import PREFIX, Deployment, deployment
from engine_reports import image_name
from kernel_client import KernelClient

BASE = "berth/base-notebook:latest"
MINIMAL = "berth/minimal-notebook:latest"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    extra = {
        "servers": {"named": True, "limit_per_user": 2},
        "images": {"default": BASE, "allowed": {"Base": BASE, "Minimal": MINIMAL}},
        "storage": {"volume_name_template": f"{PREFIX}-user-{{username}}{{server_suffix}}"},
    }
    with deployment(Path(tmp_path_factory.mktemp("named")), extra) as d:
        yield d


def start(dep: Deployment, server: str, image: str) -> None:
    answer = dep.api("POST", f"/hub/api/users/admin/servers/{server}", json={"image": image})
    assert answer.status_code in (201, 202), answer.text


def wait_ready(dep: Deployment, server: str, timeout: float = 180, user: str = "admin") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        model = dep.api("GET", f"/hub/api/users/{user}").json()
        if ((model.get("servers") or {}).get(server) or {}).get("ready"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{user}/{server} did not become ready: {model}")


def run(dep: Deployment, server: str, code: str) -> str:
    base = f"{dep.url}/user/admin/{server}/"
    with KernelClient(base, dep.token(), timeout=120) as kernel:
        result = kernel.execute(code)
        assert result.ok, result.describe()
        return result.stdout.strip()


def test_two_named_servers_with_their_images_and_volumes(dep: Deployment) -> None:
    start(dep, "one", "Base")
    start(dep, "two", "Minimal")
    for server in ("one", "two"):
        wait_ready(dep, server)
    client = docker.from_env()
    try:
        found = {
            c.labels["berth.server"]: c
            for c in client.containers.list(
                filters={"label": ["berth.user=admin", "berth.role=single-user"]}
            )
        }
        assert image_name(found["one"].attrs["Config"]["Image"]) == BASE
        assert image_name(found["two"].attrs["Config"]["Image"]) == MINIMAL
        volumes = {
            server: [m["Name"] for m in found[server].attrs["Mounts"] if m["Type"] == "volume"]
            for server in ("one", "two")
        }
        assert volumes == {
            "one": [f"{PREFIX}-user-admin_one"],
            "two": [f"{PREFIX}-user-admin_two"],
        }
    finally:
        client.close()
    run(dep, "one", "open('/home/jovyan/work/here.txt', 'w').write('one')")
    check = "import os; print(os.path.exists('/home/jovyan/work/here.txt'))"
    assert (run(dep, "one", check), run(dep, "two", check)) == ("True", "False")
    third = dep.api("POST", "/hub/api/users/admin/servers/three", json={"image": "Base"})
    assert third.status_code == 400 and "maximum of 2 named servers" in third.text, third.text


def test_a_snapshot_taken_with_the_cli_starts_again_through_the_guard(dep: Deployment) -> None:
    """`berth snapshot take` on the host; the hub (through the engine guard's image listing)
    offers it to its owner, whose server then has the files from outside the volume.
    `berth snapshot share` (fails on main before it existed) lets one more user start it,
    through the guard's listing of the snapshots shared with them; a third user is refused."""
    run(dep, "one", "open('/home/jovyan/outside.txt', 'w').write('snap')")
    image = "berth-snapshot/berth/uadmin:v1"
    try:  # removed whatever fails (a leftover would refuse the next run's take)
        taken = dep.berth("snapshot", "take", "admin", "--server", "one", "--name", "v1")
        assert taken.returncode == 0, taken.stderr
        assert taken.stdout.strip() == image
        listed = dep.berth("snapshot", "list", "admin")
        assert "v1" in listed.stdout + listed.stderr
        dep.stop_server("admin", "one")
        start(dep, "one", "Snapshot v1")
        wait_ready(dep, "one")
        assert run(dep, "one", "print(open('/home/jovyan/outside.txt').read())") == "snap"
        dep.stop_server("admin", "one")

        for user in ("bea", "cal"):
            added = dep.berth("users", "add", user)
            assert added.returncode == 0, added.stderr
        refused = dep.berth("snapshot", "share", "admin", "v1", "nobody")
        assert refused.returncode == 1 and "no user named 'nobody'" in refused.stderr, refused
        shared = dep.berth("snapshot", "share", "admin", "v1", "bea")
        assert shared.returncode == 0, shared.stderr
        assert "shared with bea" in shared.stdout + shared.stderr
        choice = {"image": "Snapshot v1 from admin"}
        answer = dep.api("POST", "/hub/api/users/cal/server", json=choice)
        assert answer.status_code == 403, answer.text
        answer = dep.api("POST", "/hub/api/users/bea/server", json=choice)
        assert answer.status_code in (201, 202), answer.text
        wait_ready(dep, "", user="bea")
        client = docker.from_env()
        beas = client.containers.list(filters={"label": ["berth.user=bea"]})
        client.close()
        assert [image_name(c.attrs["Config"]["Image"]) for c in beas] == [image]
        dep.stop_server("bea")
        removed = dep.berth("snapshot", "remove", "admin", "v1")
        assert removed.returncode == 0, removed.stderr
        client = docker.from_env()
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get(image)
        client.close()
    finally:
        client = docker.from_env()
        # Gone already when `berth snapshot remove` ran. (Podman answers the removal of a
        # missing image with "image not known", which the SDK raises as NotFound, not as
        # ImageNotFound, its subclass.)
        with contextlib.suppress(docker.errors.NotFound):
            client.images.remove(image, force=True)
        client.close()
