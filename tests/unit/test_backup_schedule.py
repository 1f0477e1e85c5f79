"""Scheduled backups: the `backup:` section, the hub service it adds, and when it runs."""

import json

import pytest

from berth.config import ConfigError, config_from_data, to_jupyterhub_config
from berth.config.backup import SCHEDULE_ENV, interval_seconds
from berth.deploy.scheduled import next_run


def test_enabled_backups_add_a_hub_service_with_their_settings():
    cfg = config_from_data(
        {
            "idle_culler": {"enabled": False},
            "backup": {"enabled": True, "every": "6h", "keep": 3, "volume": "nightly"},
        }
    )
    services = to_jupyterhub_config(cfg)["JupyterHub"]["services"]
    assert services == [
        {
            "name": "berth-backup",
            "command": ["python3", "-m", "berth.deploy.scheduled"],
            "environment": {SCHEDULE_ENV: services[0]["environment"][SCHEDULE_ENV]},
        }
    ]
    assert json.loads(services[0]["environment"][SCHEDULE_ENV]) == {
        "every": 21600,
        "keep": 3,
        "destination": {"volume": "nightly"},
        "hub": {
            "data_volume": "berth-hub-data",
            "db_url": "sqlite:////srv/berth/data/jupyterhub.sqlite",
        },
        "storage": {"volume_name_template": "berth-user-{username}{server_suffix}"},
        "network": "berth",
    }


def test_a_host_directory_replaces_the_volume():
    cfg = config_from_data(
        {
            "idle_culler": {"enabled": False},
            "backup": {"enabled": True, "directory": "/srv/backups/"},
        }
    )
    env = to_jupyterhub_config(cfg)["JupyterHub"]["services"][0]["environment"]
    assert json.loads(env[SCHEDULE_ENV])["destination"] == {"directory": "/srv/backups"}


def test_disabled_backups_add_no_service():
    cfg = config_from_data({"idle_culler": {"enabled": False}})
    assert "services" not in to_jupyterhub_config(cfg)["JupyterHub"]


@pytest.mark.parametrize(
    ("backup", "extra", "message"),
    [
        ({"every": "4m"}, {}, "backup.every: must be at least 5m"),
        ({"every": "1w"}, {}, "backup.every: '1w' is not an interval"),
        ({"every": "0d"}, {}, "not an interval"),
        ({"keep": 0}, {}, "backup.keep"),
        ({"directory": "backups"}, {}, "backup.directory"),
        ({"directory": "/srv/../etc"}, {}, "backup.directory"),
        ({"directory": "/"}, {}, "backup.directory"),
        ({"volume": "no/slash"}, {}, "backup.volume"),
        ({"enabled": True, "volume": "berth-hub-data"}, {}, "must not be the hub's data volume"),
        (
            {"enabled": True},
            {"hub": {"db_url": "postgresql://hub:pw@db/jupyterhub"}},
            "need the SQLite hub database",
        ),
        ({"when": "daily"}, {}, "backup.when"),
    ],
)
def test_bad_backup_settings_are_refused(backup, extra, message):
    with pytest.raises(ConfigError, match=message):
        config_from_data({"backup": backup, **extra})


def test_intervals():
    assert [interval_seconds(v) for v in ("5m", "6h", "1d", "30d")] == [300, 21600, 86400, 2592000]


def test_when_the_next_backup_is_due():
    day = 86400.0
    now = 1_000_000.0
    assert next_run(None, day, now) == now + 60  # none yet: a minute after the start
    assert next_run(now - 3600, day, now) == now - 3600 + day  # a restart does not repeat one
    assert next_run(now - 2 * day, day, now) == now  # overdue (the hub was down): now
    assert next_run(now - 60, day, now, failed=True) == now + 600  # again in 10 minutes
    assert next_run(now - 60, 300.0, now, failed=True) == now + 300.0
