"""The marks of the test modules that run a host JupyterHub with Berth's spawner (hub_harness):
they need configurable-http-proxy on PATH, and most need the image under test built. Under CI a
skip fails the run (tests/conftest.py), so these only explain a local run's skips."""

from __future__ import annotations

import pytest
from hub_harness import chp_available, default_image, image_available

NEEDS_PROXY = pytest.mark.skipif(not chp_available(), reason="configurable-http-proxy not on PATH")
NEEDS_IMAGE = pytest.mark.skipif(not image_available(), reason=f"image {default_image()} not built")
HUB_MARKS = [pytest.mark.integration, NEEDS_IMAGE, NEEDS_PROXY]
