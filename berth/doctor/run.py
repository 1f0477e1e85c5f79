"""All of `berth doctor`'s checks, in the order a person would look: the engine, its settings,
the host, then the service (certificate, the hub seen from a user server, images, volumes)."""

from __future__ import annotations

from docker import DockerClient
from docker.errors import APIError, ImageNotFound

from berth.config.schema import BerthConfig
from berth.deploy import backup, layout, pgio
from berth.doctor import certificate, checks, facts, hub_checks, probes
from berth.errors import BerthError
from berth.images import catalog
from berth.versions import JUPYTERHUB_HUB_VERSION, JUPYTERHUB_SINGLEUSER_VERSION

HUB_API_URL = f"http://{layout.HUB_CONTAINER}:{layout.HUB_API_PORT}/hub/api/"


def configured_images(cfg: BerthConfig) -> list[str]:
    allowed = cfg.images.allowed
    choices = list(allowed.values()) if isinstance(allowed, dict) else list(allowed)
    return list(dict.fromkeys([cfg.images.default, *choices]))


def diagnose(cfg: BerthConfig) -> list[checks.Finding]:
    client, engine = facts.engine_facts()
    findings = [checks.check_engine(engine)]
    findings.append(checks.check_clock(facts.clock_facts(engine)))
    if client is None:
        return findings
    try:
        findings += [
            checks.check_live_restore(engine),
            checks.check_userland_proxy(facts.daemon_facts(engine)),
            checks.check_disk(facts.disk_facts(engine)),
            certificate.check_certificate(facts.certificate_facts(client, cfg)),
        ]
        hub_image = catalog.HUB_IMAGE.tag("latest")
        findings.append(hub_checks.check_database(_database(client, cfg, hub_image)))
        findings.append(hub_checks.check_hub_reachable(_hub_reach(client, cfg, hub_image)))
        for image in configured_images(cfg):
            found = probes.singleuser_version(client, image)
            findings.append(
                hub_checks.check_image(found, JUPYTERHUB_HUB_VERSION, JUPYTERHUB_SINGLEUSER_VERSION)
            )
        findings.append(hub_checks.check_volumes(_volumes(client, cfg, hub_image)))
    finally:
        client.close()
    return findings


def _database(client: DockerClient, cfg: BerthConfig, hub_image: str) -> hub_checks.DatabaseFacts:
    """A PostgreSQL database is tried from where the hub is (berth.deploy.pgio)."""
    db_url = cfg.hub.db_url.get_secret_value()
    if not pgio.is_postgres(db_url):
        return hub_checks.DatabaseFacts("sqlite")
    try:
        pgio.check(client, hub_image, db_url, cfg.network)
    except BerthError as exc:
        return hub_checks.DatabaseFacts("postgresql", str(exc))
    return hub_checks.DatabaseFacts("postgresql")


def _hub_reach(client: DockerClient, cfg: BerthConfig, hub_image: str) -> hub_checks.HubReachFacts:
    hub = next(iter(client.containers.list(filters={"name": f"^{layout.HUB_CONTAINER}$"})), None)
    if hub is None:
        return hub_checks.HubReachFacts(HUB_API_URL, "no-hub", "the hub is not running (berth up)")
    try:
        client.images.get(hub_image)
    except (ImageNotFound, APIError):
        return hub_checks.HubReachFacts(HUB_API_URL, "no-hub", f"{hub_image} is missing (berth up)")
    return probes.hub_reach(client, hub_image, cfg.network, HUB_API_URL)


def _volumes(client: DockerClient, cfg: BerthConfig, hub_image: str) -> hub_checks.VolumesFacts:
    names = [v.name for v in backup.user_volumes(client, cfg)]
    if not names:
        return hub_checks.VolumesFacts()
    try:
        client.images.get(hub_image)
    except (ImageNotFound, APIError):
        return hub_checks.VolumesFacts(error=f"{hub_image} is missing (berth up builds it)")
    return probes.volume_owners(client, hub_image, names)
