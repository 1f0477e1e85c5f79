"""How often a spawn asks the engine for the user's snapshots, and that the one listing still
offers a user only their own snapshots and those shared with them.

An image listing costs the engine time for every image it holds (0.4-0.6 s each with 150
images on this machine's busy engine), and a spawn from /hub/spawn made six of them (two for
the options form, two for the image choice, two for the GPU request), ~2 s of the way from
the login to JupyterLab. Fails on main before this change: the form made two listings and a
start without a choice two more."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from test_snapshots import record
from test_spawner_unit import make_spawner

from berth.spawner.errors import SpawnException


class ListingEngine:
    """Answers image listings like the engine (label filters ANDed) and counts them."""

    def __init__(self, images: list[dict[str, Any]]) -> None:
        self.images = images
        self.listings: list[dict[str, str]] = []

    async def list_images(self, labels: Mapping[str, str]) -> list[dict[str, Any]]:
        self.listings.append(dict(labels))
        return [
            image
            for image in self.images
            if all((image["Labels"] or {}).get(key) == value for key, value in labels.items())
        ]


def snapshot(owner: str, name: str, **shared: str) -> dict[str, Any]:
    found = record(owner, name, "2026-11-27T10:00:00", **shared)
    found["Labels"]["berth.snapshot.prefix"] = "berth"
    return found


def spawner_with(*images: dict[str, Any]) -> tuple[Any, ListingEngine]:
    sp = make_spawner(snapshot_images=True, image="base:1")  # the user is "Alice"
    engine = ListingEngine(list(images))
    sp.engine = engine
    return sp, engine


async def test_the_form_lists_once_and_offers_own_and_shared_snapshots_only() -> None:
    sp, engine = spawner_with(
        snapshot("Alice", "mine"),
        snapshot("bob", "his"),
        snapshot("bob", "shared", **{"-41lice": "Alice"}),
        snapshot("carol", "for-dave", dave="dave"),
    )
    form = await sp.get_options_form()
    assert engine.listings == [{"berth.snapshot.prefix": "berth"}]
    assert "Snapshot mine" in form and "Snapshot shared from bob" in form
    assert "his" not in form and "for-dave" not in form


async def test_a_start_without_a_choice_asks_the_engine_for_no_snapshot() -> None:
    sp, engine = spawner_with(snapshot("Alice", "mine"))
    sp.user_options = {}
    assert await sp.chosen_image() == "base:1"
    assert await sp.device_requests("base:1") == []
    assert engine.listings == []


async def test_a_chosen_snapshot_is_checked_against_a_fresh_listing() -> None:
    sp, engine = spawner_with(snapshot("Alice", "mine"), snapshot("bob", "his"))
    sp.user_options = {"image": "Snapshot mine"}
    assert await sp.chosen_image() == "berth-snapshot/berth/u-41lice:mine"
    assert len(engine.listings) == 1
    sp.user_options = {"image": "berth-snapshot/berth/ubob:his"}  # another user's, not shared
    with pytest.raises(SpawnException) as info:
        await sp.chosen_image()
    assert info.value.status_code == 403
