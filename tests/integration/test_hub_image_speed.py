"""What the hub image imports at start, checked in throwaway containers of it (issue 9).

The image is BERTH_HUB_TEST_IMAGE (default berth/hub:latest). Each check runs one Python command
in a container with no network, as the image's own user, and reads what it printed.
"""

from __future__ import annotations

import json
import os
import uuid

import docker
import pytest
from test_image_speed import EVENT_VALIDATION_ANSWERS, EVENT_VALIDATION_SCRIPT

pytestmark = pytest.mark.integration

IMAGE = os.environ.get("BERTH_HUB_TEST_IMAGE", "berth/hub:latest")

# What the hub's start imports (berth.deploy.hubapp, the configured plug-ins), then which
# modules of the parser generator and of the unconfigured plug-ins that left loaded.
START_IMPORTS = """
import json, sys
from berth.deploy.hubapp import JupyterHub
import berth.spawner, berth.auth.native
JupyterHub().classes
print(json.dumps(sorted(
    name for name in sys.modules
    if name.split(".")[0] in ("lark", "oauthenticator", "jwt")
    or name in ("berth.spawner.swarm", "berth.spawner.system", "berth.auth.oidc")
)))
"""


def run_python(script: str) -> str:
    client = docker.from_env()
    try:
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{IMAGE} is not built")
    output: bytes = client.containers.run(
        IMAGE,
        ["python3", "-c", script],
        entrypoint=[],
        name=f"berth-test-hubspeed-{uuid.uuid4().hex[:8]}",
        network_mode="none",
        remove=True,
        labels={"berth-test": "hub-image-speed"},
    )
    return output.decode(errors="replace").strip().splitlines()[-1]


def test_the_hub_start_imports_no_parser_generator_and_no_other_plugin() -> None:
    """Fails on main before this change: JupyterHub imports jupyter_events -> jsonschema ->
    rfc3987_syntax, which imported lark and built 40 parsers (~16 MiB of the idle hub), and
    `jupyterhub` imported every installed authenticator and spawner."""
    assert json.loads(run_python(START_IMPORTS)) == []


def test_hub_events_are_still_validated_including_iri_formats() -> None:
    """The hub's copy of the lazy parsers gives the published answers, and jupyter_events still
    refuses an event whose "iri" field is not an IRI."""
    assert json.loads(run_python(EVENT_VALIDATION_SCRIPT)) == EVENT_VALIDATION_ANSWERS
