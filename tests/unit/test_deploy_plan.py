"""berth up's pure planning: fingerprint, files, changes; and small helpers around it."""

import io
import tarfile

from berth.config.load import config_from_data
from berth.deploy.accounts import user_path
from berth.deploy.plan import HostFacts, config_changes, files_tar, plan_hub
from berth.deploy.up import public_url

FACTS = HostFacts(hub_image_id="sha256:abc", socket_gid=998, tls_names=["vm", "127.0.0.1"])


def plan(data: dict | None = None, facts: HostFacts = FACTS):
    return plan_hub(config_from_data(data or {}), facts)


def test_the_same_inputs_give_the_same_fingerprint():
    assert plan().fingerprint == plan().fingerprint
    assert plan().create_kwargs["labels"]["berth.hub.fingerprint"] == plan().fingerprint


def test_every_input_of_the_container_moves_the_fingerprint():
    base = plan().fingerprint
    assert plan({"hub": {"data_volume": "other-data"}}).fingerprint != base
    assert plan({"listen": {"port": 9443}}).fingerprint != base
    assert plan({"limits": {"memory": "1G"}}).fingerprint != base
    assert plan(facts=HostFacts("sha256:abc", 999, ["vm", "127.0.0.1"])).fingerprint != base
    assert plan(facts=HostFacts("sha256:def", 998, ["vm", "127.0.0.1"])).fingerprint != base
    assert plan(facts=HostFacts("sha256:abc", 998, ["other"])).fingerprint != base


def test_the_hub_is_unprivileged_and_secrets_stay_out_of_config_and_env():
    hub = plan({"services": [{"name": "ci", "scopes": ["admin:users"], "token": "t" * 40}]})
    kwargs = hub.create_kwargs
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["security_opt"] == ["no-new-privileges"]
    assert kwargs["group_add"] == ["998"]
    assert "t" * 40 not in hub.config_py
    assert all("t" * 40 not in value for value in kwargs["environment"].values())
    secret_files = {path: mode for path, (data, mode) in hub.files.items() if b"t" * 40 in data}
    assert list(secret_files.values()) == [0o600]
    assert "berth-cli" in hub.config_py  # the CLI's own service, in JupyterHub's admin role


def test_files_tar_keeps_modes_and_gives_everything_to_the_hub_user():
    data = files_tar(
        {"/srv/berth/data/secrets/x": (b"s", 0o600), "/srv/berth/config/c.py": (b"c", 0o644)}
    )
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["srv/berth/data/secrets/x"].mode == 0o600
    assert members["srv/berth/data/secrets"].isdir()
    assert {(m.uid, m.gid) for m in members.values()} == {(1000, 100)}
    assert "srv" not in members and "srv/berth" not in members  # the image's own dirs untouched


def test_config_changes_name_the_settings():
    old = "c.A.x = 1\nc.A.y = 2\n"
    new = "c.A.x = 1\nc.A.y = 3\nc.B.z = 4\n"
    assert config_changes(old, new) == ["A.y", "B.z"]


def test_user_names_cannot_rewrite_the_api_path():
    assert user_path("admin?") == "/users/admin%3F"
    assert user_path("a/b", "/tokens") == "/users/a%2Fb/tokens"
    assert user_path("jürgen") == "/users/j%C3%BCrgen"


def test_public_url_brackets_ipv6():
    cfg = config_from_data({"listen": {"address": "::1", "port": 8443}})
    assert public_url(cfg, FACTS) == "https://[::1]:8443/"
    cfg = config_from_data({"listen": {"address": "0.0.0.0", "port": 443}})
    assert public_url(cfg, FACTS) == "https://vm/"
