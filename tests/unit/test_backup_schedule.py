"""Scheduled backups: the `backup:` section, when berth-backup runs, what it records and how
`berth status` says it (its container's plan: test_backup_plan.py)."""

import json

import pytest

from berth.config import ConfigError, config_from_data
from berth.config.backup import MIN_EVERY_ENV, interval_seconds
from berth.deploy import backup, scheduled
from berth.deploy.backup_status import backup_lines
from berth.deploy.scheduled import after_failure, after_success, next_run


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
    assert next_run(None, 20.0, now) == now + 20  # or sooner, when `every` is shorter
    assert next_run(now - 3600, day, now) == now - 3600 + day  # a restart does not repeat one
    assert next_run(now - 2 * day, day, now) == now  # overdue (the hub was down): now
    assert next_run(now - 60, day, now, failed=True) == now + 600  # again in 10 minutes
    assert next_run(now - 60, 300.0, now, failed=True) == now + 300.0


def test_a_test_only_variable_lowers_the_minimum_interval(monkeypatch):
    with pytest.raises(ConfigError, match="at least 5m"):
        config_from_data({"backup": {"every": "20s"}})
    monkeypatch.setenv(MIN_EVERY_ENV, "10")
    assert config_from_data({"backup": {"every": "20s"}}).backup.every == "20s"
    with pytest.raises(ConfigError, match="at least 10s"):
        config_from_data({"backup": {"every": "5s"}})


def test_success_and_failure_are_recorded_with_the_reason():
    state = after_failure({}, "no space left on device", 100.0)
    assert state == {"last_failure": 100.0, "last_error": "no space left on device", "failures": 1}
    state = after_failure(state, "still no space", 200.0)
    assert state == {"last_failure": 200.0, "last_error": "still no space", "failures": 2}
    state = after_success(state, "berth-backup-x.tar.gz", 300.0)
    assert state == {
        "last_failure": 200.0,
        "last_error": None,
        "failures": 0,
        "last_success": 300.0,
        "last_archive": "berth-backup-x.tar.gz",
    }


def test_the_state_file_is_replaced_whole(tmp_path):
    path = tmp_path / ".berth-backup-state.json"
    scheduled.write_state(path, {"last_success": 1.0})
    scheduled.write_state(path, {"last_success": 2.0})
    assert json.loads(path.read_text()) == {"last_success": 2.0}
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert scheduled.read_state(path) == {"last_success": 2.0}
    path.write_text("[1, 2")
    assert scheduled.read_state(path) == {}
    assert scheduled.read_state(tmp_path / "absent") == {}


def test_status_says_when_the_last_backup_was_and_a_newer_failure():
    assert backup_lines({}) == ["backup: none yet"]
    ok = after_success({}, "berth-backup-20261127T010000Z.tar.gz", 1795741200.0)
    assert backup_lines(ok) == [
        "backup: last at 2026-11-27 01:00:00Z (berth-backup-20261127T010000Z.tar.gz)"
    ]
    failed = after_failure(ok, "the engine did not answer", 1795744800.0)
    assert backup_lines(failed) == [
        "backup: last at 2026-11-27 01:00:00Z (berth-backup-20261127T010000Z.tar.gz)",
        "  last failure (1 in a row, 2026-11-27 02:00:00Z): the engine did not answer",
    ]
    never = after_failure({}, "no deployment to back up", 1795744800.0)
    assert backup_lines(never) == [
        "backup: none yet",
        "  last failure (1 in a row, 2026-11-27 02:00:00Z): no deployment to back up",
    ]


def test_pruning_keeps_the_newest_and_leaves_partials_state_and_other_files(tmp_path):
    """berth-backup writes into the destination itself: what it keeps there must survive."""
    for day in range(1, 5):
        (tmp_path / f"berth-backup-2026010{day}T000000Z.tar.gz").write_bytes(b"x")
    others = [".berth-backup-20260105T000000Z.tar.gz.partial", ".berth-backup-state.json",
              "unrelated.txt"]  # fmt: skip
    for name in others:
        (tmp_path / name).write_bytes(b"kept")
    removed = backup.prune(tmp_path, 2)
    assert [p.name for p in removed] == [
        "berth-backup-20260101T000000Z.tar.gz",
        "berth-backup-20260102T000000Z.tar.gz",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*others, "berth-backup-20260103T000000Z.tar.gz", "berth-backup-20260104T000000Z.tar.gz"]
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_an_engine_that_stops_answering_ends_the_process_for_a_restart(monkeypatch):
    """After a dockerd restart the bind-mounted socket is the old one: berth-backup exits (75)
    so that the restart policy mounts the new one, instead of failing every backup forever."""
    clock = Clock()
    monkeypatch.setattr(scheduled.time, "time", clock.time)
    monkeypatch.setattr(scheduled.time, "sleep", clock.sleep)
    answers = iter([True, False, False, True, False, False, False])
    monkeypatch.setattr(scheduled, "engine_answers", lambda: next(answers))
    with pytest.raises(SystemExit) as ended:
        scheduled.wait_until(clock.now + 3600)
    assert ended.value.code == 75
    assert clock.now == 1_000_000.0 + 7 * 20  # a failure between answers does not count


def test_waiting_with_an_answering_engine_ends_on_time(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(scheduled.time, "time", clock.time)
    monkeypatch.setattr(scheduled.time, "sleep", clock.sleep)
    monkeypatch.setattr(scheduled, "engine_answers", lambda: True)
    scheduled.wait_until(clock.now + 50)
    assert clock.now == 1_000_050.0
