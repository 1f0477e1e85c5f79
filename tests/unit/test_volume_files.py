"""Which of a plan's files go into its volumes (through the helper), and the helper's shape."""

from __future__ import annotations

from berth.deploy import volume_files
from berth.deploy.containerplan import ContainerPlan


def _plan(files):
    kwargs = {
        "name": "berth-hub",
        "image": "sha256:hub",
        "volumes": {
            "berth-hub-data": {"bind": "/srv/berth/data", "mode": "rw"},
            "berth-proxy": {"bind": "/srv/berth/proxy", "mode": "rw"},
            "berth-engine": {"bind": "/srv/berth/engine", "mode": "ro"},
        },
    }
    return ContainerPlan("hub", kwargs, files, "print")


def test_files_below_a_mount_go_to_its_volume_the_rest_to_the_container():
    files = {
        "/srv/berth/config/jupyterhub_config.py": (b"c = 1", 0o644),
        "/srv/berth/data/secrets/service_ci_token": (b"a" * 40, 0o600),
        "/srv/berth/proxy/tls/cert.pem": (b"cert", 0o600),
        # a sibling whose name only starts like a mount path is not in that volume
        "/srv/berth/database.txt": (b"x", 0o644),
    }
    assert volume_files.split(_plan(files)) == (
        {
            "/srv/berth/config/jupyterhub_config.py": (b"c = 1", 0o644),
            "/srv/berth/database.txt": (b"x", 0o644),
        },
        {
            "/srv/berth/data/secrets/service_ci_token": (b"a" * 40, 0o600),
            "/srv/berth/proxy/tls/cert.pem": (b"cert", 0o600),
        },
        {"berth-hub-data": "/srv/berth/data", "berth-proxy": "/srv/berth/proxy"},
    )


def test_a_plan_without_volume_files_needs_no_helper():
    files = {"/srv/berth/config/jupyterhub_config.py": (b"c = 1", 0o644)}
    assert volume_files.split(_plan(files)) == (files, {}, {})


def test_the_helper_mounts_the_volumes_where_the_container_does_and_has_no_privileges():
    kwargs = volume_files.helper_kwargs(
        "sha256:hub", {"berth-proxy": "/srv/berth/proxy", "berth-hub-data": "/srv/berth/data"}
    )
    assert kwargs.pop("name").startswith("berth-files-")
    assert kwargs == {
        "image": "sha256:hub",
        "entrypoint": ["sleep", "300"],
        "user": "1000:100",
        "network_disabled": True,
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "mem_limit": "64m",
        "labels": {"berth.managed": "true", "berth.role": "files-helper"},
        "volumes": {
            "berth-hub-data": {"bind": "/srv/berth/data", "mode": "rw"},
            "berth-proxy": {"bind": "/srv/berth/proxy", "mode": "rw"},
        },
        "detach": True,
    }
