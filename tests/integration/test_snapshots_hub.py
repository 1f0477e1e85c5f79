"""Snapshots through a real hub: a package installed into a server (outside the volume) is in
the snapshot `berth snapshot take` makes; the owner starts a server from it through the options
form's choice, and another user can neither see nor request it. Fails on main before this
change: there is no berth.deploy.snapshots and no snapshot_images setting."""

from __future__ import annotations

import re
from collections.abc import Iterator

import docker
import pytest
import requests
from engine_reports import image_name
from hub_harness import Hub
from hub_marks import HUB_MARKS

from berth.deploy import snapshots
from berth.errors import BerthError

pytestmark = HUB_MARKS

SPAWNER_CONFIG = """
# The REST API answers a spawn with its outcome only if the spawn ends within
# slow_spawn_timeout (10 s by default), else with 202 while it goes on: the refusals asserted
# here (403) come after the spawner asked the engine for the snapshots, which a loaded engine
# may make slow. Below the harness's 120 s wait for the answer.
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 100}}
c.ContainerSpawner.image = "{image}"
c.ContainerSpawner.prefix = "{prefix}"
c.ContainerSpawner.pull_policy = "ifnotpresent"
c.ContainerSpawner.snapshot_images = True
c.ContainerSpawner.volumes = {{"{{prefix}}-user-{{username}}": "/home/jovyan/work"}}
"""
MARK = "/home/jovyan/.snapshot-mark"  # outside the volume: only a snapshot keeps it


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    h = Hub(tmp_path_factory.mktemp("hub"), SPAWNER_CONFIG)
    client = docker.from_env()
    try:
        yield h.start()
    finally:
        h.cleanup()
        for snap in snapshots.snapshots(client, h.prefix):
            client.images.remove(snap.image, force=True)
        client.close()


def spawn_page(hub: Hub, user: str) -> str:
    """The start page ``user`` sees (logged in with the test hub's dummy authenticator)."""
    browser = requests.Session()
    page = browser.get(f"{hub.url}/hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert xsrf, page.text[:500]
    data = {"username": user, "password": "any", "_xsrf": xsrf.group(1)}
    login = browser.post(f"{hub.url}/hub/login", data=data, timeout=60, allow_redirects=False)
    assert login.status_code == 302, login.status_code
    form = browser.get(f"{hub.url}/hub/spawn/{user}", timeout=30, allow_redirects=False)
    assert form.status_code in {200, 302}, form.status_code  # 302: no form, a start
    return form.text


def test_the_owner_starts_a_server_from_their_snapshot_and_nobody_else(hub: Hub) -> None:
    hub.spawn("ada")
    hub.execute("ada", f"open({MARK!r}, 'w').write('kept')\n!pip install -q tomli-w")
    client = docker.from_env()
    taken = snapshots.take(client, hub.prefix, "ada", name="v1")
    assert (
        taken.image == f"berth-snapshot/{hub.prefix}/uada:v1"
        and taken.owner == "ada"
        and taken.size > 0
    )
    config = client.images.get(taken.image).attrs["Config"]
    assert "JUPYTERHUB_API_TOKEN=" in config["Env"]  # there, empty: the token is not
    assert not [e for e in config["Env"] if e.startswith("JUPYTERHUB_API_TOKEN=") and e[21:]]
    hub.stop("ada")

    assert '<option value="Snapshot v1"' in spawn_page(hub, "ada")
    hub.spawn("ada", image="Snapshot v1")
    assert image_name(hub.container("ada").attrs["Config"]["Image"]) == taken.image
    check = f"import tomli_w; print(open({MARK!r}).read())"
    assert hub.execute("ada", check).strip() == "kept"

    # bob: not offered, and refused when he names it (by display name or by image)
    hub.create_user("bob")
    for choice in ("Snapshot v1", taken.image):
        r = hub.request_spawn("bob", image=choice)
        assert r.status_code == 403, (choice, r.status_code, r.text)
    assert not hub.made_here("containers", "bob")
    # another user's start page offers no snapshot of ada's (here: no choice at all)
    assert "Snapshot" not in spawn_page(hub, "dee")

    with pytest.raises(BerthError, match="in use by a container"):
        snapshots.remove(client, hub.prefix, "ada", "v1")  # ada's server runs from it
    hub.stop("ada")
    removed = snapshots.remove(client, hub.prefix, "ada", "v1")
    assert removed.image == taken.image
    assert snapshots.snapshots(client, hub.prefix, "ada") == []
    client.close()


def test_old_snapshots_are_pruned_beyond_the_rule(hub: Hub) -> None:
    hub.spawn("cy")
    client = docker.from_env()
    for name in ("a1", "a2", "a3"):
        snapshots.take(client, hub.prefix, "cy", name=name)
    pruned = snapshots.prune(client, hub.prefix, "cy", keep=2)
    assert [s.name for s in pruned] == ["a1"]
    assert [s.name for s in snapshots.snapshots(client, hub.prefix, "cy")] == ["a2", "a3"]
    hub.stop("cy")
    client.close()


def test_an_admin_shares_a_snapshot_with_one_user_and_no_one_else(hub: Hub) -> None:
    """`berth snapshot share`: the user shared with is offered the snapshot and starts a server
    from it; another user is refused it however the choice is written (the spawner checks the
    choice against the engine's labels, not the form it drew); unsharing takes it back. Fails on
    main before this change: there is no snapshots.share and the spawner offers owners only."""
    hub.spawn("eve")
    hub.execute("eve", f"open({MARK!r}, 'w').write('eve was here')")
    client = docker.from_env()
    taken = snapshots.take(client, hub.prefix, "eve", name="s1")
    layers = client.images.get(taken.image).attrs["RootFS"]["Layers"]
    hub.stop("eve")
    for user in ("fay", "gus"):
        hub.create_user(user)
    known = [entry["name"] for entry in hub.api("GET", "/users").json()]

    with pytest.raises(BerthError, match="no user named 'nobody'"):
        snapshots.share(client, hub.prefix, "eve", "s1", ["nobody"], known)
    with pytest.raises(BerthError, match="eve has no snapshot named 's9'"):
        snapshots.share(client, hub.prefix, "eve", "s9", ["fay"], known)
    shared = snapshots.share(client, hub.prefix, "eve", "s1", ["fay"], known)
    assert (shared.image, shared.shared) == (taken.image, ("fay",))
    relabelled = client.images.get(taken.image)
    assert relabelled.attrs["RootFS"]["Layers"] == layers  # a new config, no new layer
    assert relabelled.labels["berth.snapshot.shared.fay"] == "fay"

    assert '<option value="Snapshot s1"' in spawn_page(hub, "eve")
    assert '<option value="Snapshot s1 from eve"' in spawn_page(hub, "fay")
    for choice in ("Snapshot s1 from eve", "Snapshot s1", taken.image, taken.image + " "):
        r = hub.request_spawn("gus", image=choice)
        assert r.status_code == 403, (choice, r.status_code, r.text)
    assert not hub.made_here("containers", "gus")

    hub.spawn("fay", image="Snapshot s1 from eve")
    assert image_name(hub.container("fay").attrs["Config"]["Image"]) == taken.image
    assert hub.execute("fay", f"print(open({MARK!r}).read())").strip() == "eve was here"
    hub.stop("fay")

    left = snapshots.unshare(client, hub.prefix, "eve", "s1", ["fay"])
    assert left.shared == ()
    r = hub.request_spawn("fay", image="Snapshot s1 from eve")
    assert r.status_code == 403, (r.status_code, r.text)
    with pytest.raises(BerthError, match="is not shared with 'gus'"):
        snapshots.unshare(client, hub.prefix, "eve", "s1", ["gus"])
    snapshots.remove(client, hub.prefix, "eve", "s1")
    # the configs the shares left behind go with the snapshot
    leftover = [
        image.id
        for image in client.images.list(all=True, filters={"label": "berth.snapshot.owner=eve"})
        if image.labels.get("berth.snapshot.prefix") == hub.prefix
    ]
    assert leftover == []
    client.close()


def test_an_untagged_image_with_a_snapshots_labels_is_not_that_snapshot(hub: Hub) -> None:
    """An untagged image with a snapshot's labels (here committed by hand, older by its label;
    on a shared engine a leftover of an earlier run) is not that snapshot: the one with the tag
    is listed, shared and removed. Fails before this change: `berth snapshot share` relabelled
    the tagged image, then reported the untagged one, shared with nobody (seen in a deployment
    test on this engine)."""
    hub.spawn("hal")
    hub.create_user("ida")
    client = docker.from_env()
    new = snapshots.take(client, hub.prefix, "hal", name="v1")
    holder = client.containers.create(new.image, name=f"{hub.prefix}-holder", command="true")
    labels = {**client.images.get(new.image).labels, "berth.snapshot.taken": "2000-01-01T00:00"}
    stray = holder.commit(conf={"Labels": labels})  # untagged, the snapshot's labels
    holder.remove(force=True)
    try:
        listed = snapshots.snapshots(client, hub.prefix, "hal")
        assert [(s.image, s.taken) for s in listed] == [(new.image, new.taken)]
        shared = snapshots.share(client, hub.prefix, "hal", "v1", ["ida"], ["hal", "ida"])
        assert shared.shared == ("ida",)
        snapshots.remove(client, hub.prefix, "hal", "v1")
        assert snapshots.snapshots(client, hub.prefix, "hal") == []
    finally:
        client.images.remove(stray.id, force=True)
        hub.stop("hal")
        client.close()
