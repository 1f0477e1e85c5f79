"""What `berth up` wants the hub container to be, as a pure function of the config and facts.

Everything that should restart the hub when it changes (rendered config, secret files, image,
published port, TLS names) goes into one fingerprint, stored as a label on the container: the
next `berth up` compares fingerprints to decide between "nothing changed" and a restart.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from berth.config.render import SecretFile, render_config_py
from berth.config.runtime import HubRuntime
from berth.config.schema import BerthConfig
from berth.config.translate import hub_secret_files, to_jupyterhub_config
from berth.deploy import layout

HUB_UID, HUB_GID = 1000, 100  # the hub image's unprivileged user


@dataclass(frozen=True)
class HostFacts:
    """What berth up learns from the host and engine before planning."""

    hub_image_id: str
    socket_gid: int
    tls_names: list[str]  # names and addresses a self-signed certificate must cover
    operator_tls: tuple[bytes, bytes] | None = None  # (cert, key) read from tls.cert/tls.key


@dataclass(frozen=True)
class HubPlan:
    config_py: str
    files: dict[str, tuple[bytes, int]]  # container path -> (content, mode), copied in at create
    create_kwargs: dict[str, Any]
    fingerprint: str


def with_cli_service(config: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Add the berth-cli service whose token `berth users …` uses inside the hub container."""
    hub = dict(config.get("JupyterHub", {}))
    services = [*hub.get("services", [])]
    services.append({"name": layout.CLI_SERVICE, "api_token": SecretFile(layout.CLI_TOKEN_FILE)})
    roles = [*hub.get("load_roles", [])]
    # JupyterHub's own admin role: granting or revoking admin needs it (admin:users does not).
    roles.append({"name": "admin", "services": [layout.CLI_SERVICE]})
    hub["services"], hub["load_roles"] = services, roles
    return {**config, "JupyterHub": hub}


def plan_hub(cfg: BerthConfig, facts: HostFacts) -> HubPlan:
    runtime = HubRuntime(hub_connect_host=layout.HUB_CONTAINER, bind_port=layout.HUB_PORT)
    config_py = render_config_py(with_cli_service(to_jupyterhub_config(cfg, runtime)))
    files: dict[str, tuple[bytes, int]] = {layout.CONFIG_FILE: (config_py.encode(), 0o644)}
    for path, secret in hub_secret_files(cfg, runtime).items():
        files[path] = (secret.get_secret_value().encode(), 0o600)
    names: list[str] = []
    if facts.operator_tls:
        cert, key = facts.operator_tls
        files[runtime.ssl_cert] = (cert, 0o644)
        files[runtime.ssl_key] = (key, 0o600)
    else:
        names = list(dict.fromkeys([*cfg.tls.hostnames, *facts.tls_names]))
    create_kwargs = {
        "image": facts.hub_image_id,
        "name": layout.HUB_CONTAINER,
        "hostname": layout.HUB_CONTAINER,
        "detach": True,
        "environment": {"BERTH_TLS_SELF_SIGNED": ",".join(names)},
        "ports": {f"{layout.HUB_PORT}/tcp": (cfg.listen.address, cfg.listen.port)},
        "volumes": {
            cfg.hub.data_volume: {"bind": layout.DATA_DIR, "mode": "rw"},
            "/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
        },
        # The hub is unprivileged; the socket's group lets it ask the engine for containers.
        "group_add": [str(facts.socket_gid)],
        "network": cfg.network,
        "restart_policy": {"Name": "unless-stopped"},
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
    }
    # Everything the container is made from goes into the fingerprint (the files' contents and
    # every create argument), so no change can slip past as "nothing changed".
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path][0] + b"\0")
    digest.update(json.dumps(create_kwargs, sort_keys=True, default=str).encode())
    fingerprint = digest.hexdigest()[:32]
    create_kwargs["labels"] = {layout.LABEL_HUB: "true", layout.LABEL_FINGERPRINT: fingerprint}
    return HubPlan(config_py, files, create_kwargs, fingerprint)


def files_tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    """One tar (rooted at /) of the plan's files, owned by the hub user, with their modes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories: set[str] = set()
        for path in sorted(files):
            for parent in reversed(PurePosixPath(path).parents[:-1]):
                if str(parent) not in directories and str(parent).startswith("/srv/berth/"):
                    directories.add(str(parent))
                    info = tarfile.TarInfo(str(parent).lstrip("/"))
                    info.type, info.mode, info.uid, info.gid = (
                        tarfile.DIRTYPE,
                        0o700,
                        HUB_UID,
                        HUB_GID,
                    )
                    tar.addfile(info)
            data, mode = files[path]
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid = len(data), mode, HUB_UID, HUB_GID
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def config_changes(old: str, new: str) -> list[str]:
    """The `c.Section.key` settings that differ between two rendered configs."""

    def settings(text: str) -> dict[str, str]:
        pairs = (line.split(" = ", 1) for line in text.splitlines() if line.startswith("c."))
        return {key[2:]: value for key, value in pairs}

    before, after = settings(old), settings(new)
    return sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
