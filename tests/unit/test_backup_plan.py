"""berth-backup as planned: its whole container, where it sits in the deployment, and what
`berth up` does without it."""

import json

from berth.config import config_from_data
from berth.config.backup import SCHEDULE_ENV
from berth.deploy.containerplan import HostFacts
from berth.deploy.plan import plan_deployment

FACTS = HostFacts(hub_image_id="sha256:abc", socket_gid=998, tls_names=["vm", "127.0.0.1"])


def plan(data: dict):
    return plan_deployment(config_from_data(data), FACTS)


def schedule(destination: dict) -> str:
    return json.dumps(
        {
            "destination": destination,
            "every": 21600,
            "hub": {
                "data_volume": "berth-hub-data",
                "db_url": "sqlite:////srv/berth/data/jupyterhub.sqlite",
            },
            "keep": 3,
            "network": "berth",
            "storage": {"volume_name_template": "berth-user-{username}{server_suffix}"},
        },
        sort_keys=True,
    )


def test_berth_backup_has_the_socket_but_no_network_no_capabilities_and_a_read_only_root():
    deployment = plan({"backup": {"enabled": True, "every": "6h", "keep": 3, "volume": "nightly"}})
    backup = deployment.backup
    assert backup is not None
    assert backup.files == {}
    assert backup.create_kwargs == {
        "image": "sha256:abc",
        "name": "berth-backup",
        "hostname": "berth-backup",
        "command": ["python3", "-m", "berth.deploy.scheduled"],
        "detach": True,
        "user": "0:0",
        "environment": {
            SCHEDULE_ENV: schedule({"volume": "nightly"}),
            "DOCKER_HOST": "unix:///var/run/docker.sock",
        },
        "network_mode": "none",
        "volumes": {
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
            "nightly": {"bind": "/srv/berth/backups", "mode": "rw"},
        },
        "tmpfs": {"/tmp": "size=16m,mode=1777"},
        "read_only": True,
        "healthcheck": {
            "test": ["CMD", "python3", "-m", "berth.deploy.hubcheck", "backup"],
            "interval": 5_000_000_000,
            "timeout": 10_000_000_000,
            "retries": 3,
            "start_period": 10_000_000_000,
        },
        "restart_policy": {"Name": "unless-stopped"},
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "labels": {
            "berth.deploy.role": "backup",
            "berth.deploy.fingerprint": backup.fingerprint,
        },
    }
    # started last, after the hub has made its data; the volume is berth up's to create
    assert deployment.containers[-1] is backup
    assert deployment.volumes["nightly"] == {"berth.managed": "true", "berth.role": "backups"}


def test_a_host_directory_is_mounted_instead_of_the_volume_and_no_volume_is_made():
    deployment = plan({"backup": {"enabled": True, "directory": "/srv/backups/", "keep": 3,
                                  "every": "6h"}})  # fmt: skip
    kwargs = deployment.backup.create_kwargs
    assert kwargs["volumes"]["/srv/backups"] == {"bind": "/srv/berth/backups", "mode": "rw"}
    assert json.loads(kwargs["environment"][SCHEDULE_ENV])["destination"] == {
        "directory": "/srv/backups"
    }
    assert "berth-backups" not in deployment.volumes


def test_without_backups_there_is_no_container_no_volume_and_no_hub_service():
    deployment = plan({})
    assert deployment.backup is None
    assert [c.name for c in deployment.containers] == [
        "berth-engine-guard", "berth-firewall", "berth-hub", "berth-proxy"
    ]  # fmt: skip
    assert "berth-backups" not in deployment.volumes
    assert "berth.deploy.scheduled" not in deployment.config_py


def test_the_hub_runs_no_backup_service_and_gets_no_socket_when_backups_are_on():
    """The schedule ran as a hub service before; now the hub is as it is without backups."""
    on, off = plan({"backup": {"enabled": True}}), plan({})
    assert on.config_py == off.config_py
    assert on.hub.create_kwargs == off.hub.create_kwargs


def test_a_changed_schedule_changes_only_berth_backups_fingerprint():
    daily, hourly = (
        plan({"backup": {"enabled": True}}),
        plan({"backup": {"enabled": True, "every": "1h"}}),
    )
    assert daily.backup.fingerprint != hourly.backup.fingerprint
    assert [c.fingerprint for c in daily.containers[:-1]] == [
        c.fingerprint for c in hourly.containers[:-1]
    ]
