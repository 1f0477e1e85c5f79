"""The certificate the proxy serves, as planned: the self-signed one's names, what a change
of certificate is (a proxy restart), and the ACME client's container, network and volume."""

from __future__ import annotations

import hashlib
from pathlib import PurePosixPath
from typing import Any

from berth.config.schema import BerthConfig
from berth.deploy import layout
from berth.deploy.containerplan import SECURITY, ContainerPlan, HostFacts, finish, healthcheck


def self_signed_names(cfg: BerthConfig, facts: HostFacts) -> list[str]:
    acme = cfg.tls.acme.hostnames if cfg.tls.acme else []
    return list(dict.fromkeys([*acme, *cfg.tls.hostnames, *facts.tls_names]))


def tls_identity(cfg: BerthConfig, facts: HostFacts) -> str:
    """What the certificate the proxy serves is made from: a new one means a proxy restart.
    ACME's certificates change by themselves, and the proxy loads them without one."""
    if facts.operator_tls:
        return "operator:" + hashlib.sha256(b"\0".join(facts.operator_tls)).hexdigest()
    if cfg.tls.acme:
        return "acme"
    return "self-signed:" + ",".join(self_signed_names(cfg, facts))


def acme_network_name(cfg: BerthConfig) -> str:
    return f"{cfg.network}-acme"


def acme_volume_name(cfg: BerthConfig) -> str:
    return f"{cfg.hub.data_volume}-acme"


def acme_network_kwargs(cfg: BerthConfig) -> dict[str, Any]:
    """berth-acme's network: its own bridge, so it shares none with the hub, the proxy or a
    user server; it needs only the way out to the authority and its published HTTP port."""
    return {
        "name": acme_network_name(cfg),
        "driver": "bridge",
        "labels": {layout.LABEL_ROLE: "acme"},
    }


def plan_acme(cfg: BerthConfig, facts: HostFacts, proxy_volume: str) -> ContainerPlan | None:
    """The ACME client: the proxy volume (to write the certificate) and its own volume (the
    account key); no engine, no guard, not on the Berth network; the HTTP port published."""
    acme = cfg.tls.acme
    if acme is None:
        return None
    command = [
        "python3", "-m", "berth.acme.service",
        "--directory", acme.directory_url(),
        "--email", acme.email,
        "--http-port", str(layout.ACME_HTTP_PORT),
        "--challenge", acme.challenge_type(),
        "--https-port", str(cfg.listen.port),
        "--tls-dir", str(PurePosixPath(layout.TLS_CERT).parent),
        "--state", layout.ACME_DIR,
    ]  # fmt: skip
    for name in acme.hostnames:
        command += ["--name", name]
    environment = {}
    if facts.acme_directory_ca:  # a public CA certificate, not a secret
        environment["BERTH_ACME_DIRECTORY_CA"] = facts.acme_directory_ca.decode()
    kwargs = {
        "image": facts.hub_image_id,
        "name": layout.ACME_CONTAINER,
        "hostname": layout.ACME_CONTAINER,
        "command": command,
        "detach": True,
        "environment": environment,
        # Without http_port nothing is published (TLS-ALPN-01 goes through the proxy's port);
        # the HTTP server still answers inside, for the health check.
        "ports": (
            {f"{layout.ACME_HTTP_PORT}/tcp": (cfg.listen.address, acme.http_port)}
            if acme.http_port
            else {}
        ),
        "volumes": {
            proxy_volume: {"bind": layout.PROXY_DIR, "mode": "rw"},
            acme_volume_name(cfg): {"bind": layout.ACME_DIR, "mode": "rw"},
        },
        "network": acme_network_name(cfg),
        "read_only": True,
        "healthcheck": healthcheck("acme"),
        **SECURITY,
    }
    return finish("acme", kwargs, {})
