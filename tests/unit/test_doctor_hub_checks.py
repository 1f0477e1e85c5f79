"""`berth doctor`'s checks of the hub's side as pure functions: facts written by hand in,
whole findings out."""

from __future__ import annotations

import pytest

from berth.doctor import hub_checks
from berth.doctor.checks import Finding
from berth.doctor.hub_checks import (
    HubReachFacts,
    ImageFacts,
    VolumeFacts,
    VolumesFacts,
)

URL = "http://berth-hub:8081/hub/api/"


@pytest.mark.parametrize(
    ("outcome", "status", "fix_has"),
    [
        ("ok", "ok", ""),
        ("no-hub", "skip", ""),
        ("dns", "fail", "user-defined network"),
        ("refused", "fail", "hub_ip = '0.0.0.0'"),
        ("timeout", "fail", "firewall"),
        ("http", "fail", "hub_connect_url"),
    ],
)
def test_hub_reachable_from_a_user_container(outcome, status, fix_has):
    found = hub_checks.check_hub_reachable(HubReachFacts(URL, outcome, "detail"))
    assert (found.check, found.status) == ("hub-from-user", status)
    assert fix_has in found.fix
    if status == "fail":
        assert found.summary == (
            f"{URL}: detail; user servers start, cannot reach the hub, and the spawn fails or "
            "times out (the classic hub_connect_ip problem)"
        )


@pytest.mark.parametrize(
    ("image", "status", "summary"),
    [
        (ImageFacts("i", True, "5.5.4"), "ok", "jupyterhub-singleuser 5.5.4"),
        (
            ImageFacts("i", True, "5.2.1"),
            "warn",
            "jupyterhub-singleuser 5.2.1 is older than "
            "the hub (5.5.4); it works, with the hub's newer features missing",
        ),
        (
            ImageFacts("i", True, "4.1.5"),
            "fail",
            "jupyterhub-singleuser 4.1.5 does not speak "
            "the hub's API (JupyterHub 5.5.4): servers start and fail to register",
        ),
        (
            ImageFacts("i", True, None, "no jupyterhub-singleuser command in it"),
            "fail",
            "has no jupyterhub-singleuser (no jupyterhub-singleuser command in it): the hub can "
            "start it but never reach a notebook server in it",
        ),
        (
            ImageFacts("i", False),
            "fail",
            "not on this engine: spawns of it fail (no registry is asked for Berth's images)",
        ),
    ],
)
def test_images(image, status, summary):
    found = hub_checks.check_image(image, "5.5.4", "5.5.4")
    assert (found.check, found.status, found.summary) == ("image i", status, summary)


def test_images_across_jupyterhub_5_and_6():
    """A 6.1 hub serves the images' 5.5 jupyterhub-singleuser (test_hub_versions.py and every
    deployment test run it): Berth's own pair is no warning; another 5.5 release works but is
    not the tested one; a 5.4 one was never tested with it."""
    found = [
        (f.status, f.summary)
        for f in (
            hub_checks.check_image(ImageFacts("i", True, "5.5.4\n"), "6.1.1", "5.5.4"),
            hub_checks.check_image(ImageFacts("i", True, "5.5.1"), "6.1.1", "5.5.4"),
            hub_checks.check_image(ImageFacts("i", True, "5.4.6"), "6.1.1", "5.5.4"),
            hub_checks.check_image(ImageFacts("i", True, "6.1.1"), "6.1.1", "5.5.4"),
        )
    ]
    assert found == [
        ("ok", "jupyterhub-singleuser 5.5.4"),
        (
            "warn",
            "jupyterhub-singleuser 5.5.1 is older than the hub (6.1.1); it works, with the "
            "hub's newer features missing",
        ),
        (
            "fail",
            "jupyterhub-singleuser 5.4.6 does not speak the hub's API (JupyterHub 6.1.1): "
            "servers start and fail to register",
        ),
        ("ok", "jupyterhub-singleuser 6.1.1"),
    ]


def test_volumes():
    good = VolumeFacts("berth-user-alice", 1000, 100, 0o755)
    group = VolumeFacts("berth-user-bob", 0, 100, 0o775)
    rooted = VolumeFacts("berth-user-carol", 0, 0, 0o755)
    assert hub_checks.check_volumes(VolumesFacts((good, group))).status == "ok"
    found = hub_checks.check_volumes(VolumesFacts((good, rooted)))
    assert found == Finding(
        "volumes",
        "fail",
        "the notebook user (1000:100) cannot write to berth-user-carol (0:0, 755): saving a "
        "notebook there fails with 'Permission denied'",
        "hand each to the notebook user, e.g. `docker run --rm --user 0 -v "
        "berth-user-carol:/v --entrypoint chown berth/hub:latest 1000:100 /v` (with its server "
        "stopped)",
    )
    assert hub_checks.check_volumes(VolumesFacts()).status == "skip"
    assert hub_checks.check_volumes(VolumesFacts(error="cannot")).status == "skip"


def test_database():
    assert hub_checks.check_database(hub_checks.DatabaseFacts("sqlite")).status == "ok"
    assert hub_checks.check_database(hub_checks.DatabaseFacts("postgresql")) == Finding(
        "database", "ok", "PostgreSQL answers the hub's address"
    )
    problem = (
        "the hub database (jupyterhub on db:5432 as hub): PostgreSQL refused the password for "
        "the user hub; correct the password in hub.db_url (berth.yaml)"
    )
    assert hub_checks.check_database(hub_checks.DatabaseFacts("postgresql", problem)) == Finding(
        "database",
        "fail",
        "the hub database (jupyterhub on db:5432 as hub): PostgreSQL refused the password for "
        "the user hub",
        "correct the password in hub.db_url (berth.yaml)",
    )
