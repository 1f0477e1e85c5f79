"""The idle hub's memory, and how long its start takes, for one or more hub images side by side.

    python bench/hub_memory.py [--runs 3] [--image berth/hub:latest] [--image OTHER] [--wait 20]
                               [--with-source IMAGE]

Each run starts a throwaway container of the image with no network, as `berth up` starts the
hub (the image's own entry: berth.deploy.hubinit, then JupyterHub with Berth's spawner and
local accounts), except that JupyterHub starts its proxy inside the same container, since
there is no proxy container. Printed per image (median of the runs, interleaved so that the
machine's load hits every image alike): seconds from the container's start to JupyterHub's
"is now running", and, --wait seconds later, the RSS of the JupyterHub process (VmRSS from
/proc; the proxy's node process is not counted). Bounded: every container is removed, and a
start that takes over 120 s fails the run.

--with-source IMAGE adds IMAGE once more with this checkout's `berth` package and base-notebook's
lazy rfc3987_syntax mounted over the image's: what a hub image built from this checkout runs,
measured without building one (its byte-code is the checkout's, or made in memory).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import docker
from process_memory import max_rss_mib

# What berth up's rendered config sets that matters for memory: the spawner, the authenticator
# (local accounts), the CLI's service with the admin role. No TLS: the proxy is inside.
CONFIG = """
c.JupyterHub.db_url = "sqlite:////srv/berth/data/jupyterhub.sqlite"
c.JupyterHub.spawner_class = "berth"
c.JupyterHub.authenticator_class = "berth-native"
c.JupyterHub.bind_url = "http://127.0.0.1:8000/"
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.cleanup_servers = False
c.JupyterHub.cookie_secret_file = "/srv/berth/data/secrets/cookie_secret"
c.JupyterHub.last_activity_interval = 30
c.Authenticator.admin_users = {"admin"}
c.Authenticator.allow_all = True
c.ContainerSpawner.image = "berth/base-notebook:latest"
c.ContainerSpawner.remove = True
c.JupyterHub.services = [{"name": "berth-cli", "api_token": "bench-token-not-a-secret-0123456"}]
c.JupyterHub.load_roles = [{"name": "admin", "services": ["berth-cli"]}]
"""
READY = "JupyterHub is now running"
SITE = "/opt/venv/lib/python3.11/site-packages"
CHECKOUT = Path(__file__).resolve().parents[1]
LAZY = CHECKOUT / "berth/images/stack/base-notebook/lazy_rfc3987_syntax"
SOURCE_MOUNTS = {
    str(CHECKOUT / "berth"): {"bind": f"{SITE}/berth", "mode": "ro"},
    **{
        str(LAZY / name): {"bind": f"{SITE}/rfc3987_syntax/{name}", "mode": "ro"}
        for name in ("__init__.py", "syntax_helpers.py")
    },
}
SOURCE_SUFFIX = " + this checkout"


def hub_rss_mib(container: docker.models.containers.Container) -> float:
    """VmRSS of the JupyterHub process (python; not tini, not the proxy's node)."""
    return max_rss_mib(container, "*python*jupyterhub*|*berth.deploy.hubapp*")


def start_once(
    client: docker.DockerClient, image: str, config: Path, wait: float
) -> tuple[float, float]:
    volumes = {str(config): {"bind": "/srv/berth/config/jupyterhub_config.py", "mode": "ro"}}
    if image.endswith(SOURCE_SUFFIX):
        image = image.removesuffix(SOURCE_SUFFIX)
        volumes.update(SOURCE_MOUNTS)
    started = time.perf_counter()
    container = client.containers.run(
        image,
        detach=True,
        network_mode="none",
        volumes=volumes,
        labels={"berth-bench": "hub_memory"},
    )
    try:
        deadline = started + 120
        while READY not in container.logs().decode(errors="replace"):
            container.reload()
            if container.status == "exited" or time.perf_counter() > deadline:
                tail = container.logs(tail=20).decode(errors="replace")
                raise RuntimeError(f"{image}: the hub did not start:\n{tail}")
            time.sleep(0.1)
        ready = time.perf_counter() - started
        time.sleep(wait)  # idle: start-up work settled
        return ready, hub_rss_mib(container)
    finally:
        container.remove(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--image", action="append", help="repeat to compare images")
    parser.add_argument("--wait", type=float, default=20.0, help="idle seconds before reading")
    parser.add_argument("--with-source", metavar="IMAGE", help="IMAGE + this checkout mounted")
    args = parser.parse_args()
    images = args.image or ["berth/hub:latest"]
    if args.with_source:
        images.append(args.with_source + SOURCE_SUFFIX)
    client = docker.from_env()
    seen: dict[str, list[tuple[float, float]]] = {image: [] for image in images}
    with tempfile.TemporaryDirectory(prefix="berth-bench-hub-") as tmp:
        config = Path(tmp) / "jupyterhub_config.py"
        config.write_text(CONFIG)
        config.chmod(0o644)
        Path(tmp).chmod(0o755)
        for _ in range(max(1, min(args.runs, 10))):
            for image in images:  # interleaved: every image sees the same machine load
                seen[image].append(start_once(client, image, config, args.wait))
    for image, runs in seen.items():
        ready = [r for r, _ in runs]
        rss = [m for _, m in runs]
        print(
            f"{image}: JupyterHub running after {statistics.median(ready):.1f} s"
            f" (min {min(ready):.1f}, max {max(ready):.1f});"
            f" idle RSS {statistics.median(rss):.1f} MiB (min {min(rss):.1f}, max {max(rss):.1f});"
            f" runs {len(runs)}"
        )


if __name__ == "__main__":
    main()
