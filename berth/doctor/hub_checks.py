"""`berth doctor`'s checks of the hub's side: its database, whether user servers reach it,
the user image's JupyterHub version, and the owners of the users' volumes (pure functions of
facts, like every check)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from berth.doctor.checks import Finding

NOTEBOOK_UID, NOTEBOOK_GID = 1000, 100  # docker-stacks' jovyan, the user of Berth's images


@dataclass(frozen=True)
class DatabaseFacts:
    """The hub's PostgreSQL database, as a helper on the hub's network found it."""

    kind: Literal["sqlite", "postgresql"]
    problem: str = ""  # berth.deploy.pgtool's one line: "the hub database (…): what; fix"


def check_database(database: DatabaseFacts) -> Finding:
    if database.kind == "sqlite":
        return Finding("database", "ok", "SQLite in the hub's data volume")
    if not database.problem:
        return Finding("database", "ok", "PostgreSQL answers the hub's address")
    what, _, fix = database.problem.partition("; ")
    return Finding("database", "fail", what, fix or "check hub.db_url in berth.yaml")


@dataclass(frozen=True)
class HubReachFacts:
    """What a container placed like a user server saw when it asked for the hub's API."""

    url: str
    outcome: Literal["ok", "no-hub", "dns", "refused", "timeout", "http", "other"]
    detail: str = ""


def check_hub_reachable(reach: HubReachFacts) -> Finding:
    name = "hub-from-user"
    if reach.outcome == "ok":
        return Finding(name, "ok", f"a container on the users' network reaches {reach.url}")
    if reach.outcome == "no-hub":
        return Finding(name, "skip", reach.detail or "the hub is not running")
    consequence = (
        "user servers start, cannot reach the hub, and the spawn fails or times out "
        "(the classic hub_connect_ip problem)"
    )
    own_hub = (
        "with your own JupyterHub: c.JupyterHub.hub_ip = '0.0.0.0' (listen on the network, not "
        "127.0.0.1) and c.JupyterHub.hub_connect_ip = the hub container's name on the users' "
        "network"
    )
    fixes = {
        "dns": f"the name in {reach.url} does not resolve there: the hub and user servers "
        "must share a user-defined network (berth up makes one: run it again); " + own_hub,
        "refused": "nothing listens there: the hub listens on 127.0.0.1 or another port; "
        + own_hub,
        "timeout": "packets are dropped on the way: a firewall, or different networks; run "
        "`berth up` again (it restores its firewall rules); " + own_hub,
        "http": "something else answers there; check hub_connect_url / hub_connect_ip",
        "other": own_hub,
    }
    return Finding(
        name,
        "fail",
        f"{reach.url}: {reach.detail or reach.outcome}; {consequence}",
        fixes[reach.outcome],
    )


@dataclass(frozen=True)
class ImageFacts:
    image: str
    present: bool
    singleuser_version: str | None = None  # what `jupyterhub-singleuser --version` printed
    error: str = ""


def _major_minor(version: str) -> tuple[int, int] | None:
    parts = version.strip().split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


# Across a major release, the pairs the tests run together: a JupyterHub 6 hub with the images'
# 5.5 jupyterhub-singleuser (tests/integration/test_hub_versions.py; berth/versions.py).
_ACROSS_MAJORS = ((5, 5), (7, 0))


def _speak_together(found: tuple[int, int], hub: tuple[int, int]) -> bool:
    low, high = _ACROSS_MAJORS
    return found[0] == hub[0] or all(low <= version < high for version in (found, hub))


def check_image(image: ImageFacts, hub_version: str, images_version: str) -> Finding:
    """`hub_version`: the hub's JupyterHub; `images_version`: the jupyterhub-singleuser release
    Berth's own notebook images carry, which may be older than the hub's (berth/versions.py):
    that pair is tested together, so it is not a warning."""
    name = f"image {image.image}"
    if not image.present:
        return Finding(
            name,
            "fail",
            "not on this engine: spawns of it fail (no registry is asked for Berth's images)",
            "build it (`berth images build`), or pull it",
        )
    if image.singleuser_version is None:
        return Finding(
            name,
            "fail",
            f"has no jupyterhub-singleuser ({image.error or 'not found'}): the hub can start "
            "it but never reach a notebook server in it",
            f"build it FROM berth/base-notebook, or `pip install jupyterhub=={hub_version}` in it",
        )
    found, hub = _major_minor(image.singleuser_version), _major_minor(hub_version)
    if found is None or hub is None or not _speak_together(found, hub):
        return Finding(
            name,
            "fail",
            f"jupyterhub-singleuser {image.singleuser_version.strip()} does not speak the "
            f"hub's API (JupyterHub {hub_version}): servers start and fail to register",
            f"install jupyterhub=={hub_version} in the image",
        )
    if found < hub and image.singleuser_version.strip() != images_version:
        return Finding(
            name,
            "warn",
            f"jupyterhub-singleuser {image.singleuser_version.strip()} is older than the hub "
            f"({hub_version}); it works, with the hub's newer features missing",
            f"install jupyterhub=={hub_version} in the image",
        )
    return Finding(name, "ok", f"jupyterhub-singleuser {image.singleuser_version.strip()}")


@dataclass(frozen=True)
class VolumeFacts:
    name: str
    uid: int
    gid: int
    mode: int  # permission bits of the volume's root directory


@dataclass(frozen=True)
class VolumesFacts:
    volumes: tuple[VolumeFacts, ...] = ()
    error: str = ""
    image: str = "berth/hub:latest"  # for the fix's command line
    expected: tuple[int, int] = field(default=(NOTEBOOK_UID, NOTEBOOK_GID))


def writable_by(volume: VolumeFacts, uid: int, gid: int) -> bool:
    if volume.uid == uid:
        return bool(volume.mode & 0o200)
    if volume.gid == gid:
        return bool(volume.mode & 0o020)
    return bool(volume.mode & 0o002)


def check_volumes(volumes: VolumesFacts) -> Finding:
    if volumes.error:
        return Finding("volumes", "skip", volumes.error)
    if not volumes.volumes:
        return Finding("volumes", "skip", "no user volumes yet")
    uid, gid = volumes.expected
    bad = [v for v in volumes.volumes if not writable_by(v, uid, gid)]
    if not bad:
        return Finding(
            "volumes", "ok", f"{len(volumes.volumes)} user volume(s), each writable by {uid}"
        )
    shown = ", ".join(f"{v.name} ({v.uid}:{v.gid}, {v.mode:o})" for v in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    return Finding(
        "volumes",
        "fail",
        f"the notebook user ({uid}:{gid}) cannot write to {shown}{more}: saving a notebook "
        "there fails with 'Permission denied'",
        f"hand each to the notebook user, e.g. `docker run --rm --user 0 -v {bad[0].name}:/v "
        f"--entrypoint chown {volumes.image} {uid}:{gid} /v` (with its server stopped)",
    )
