"""Version pins shared by the package, the images and the tests (one place to change them)."""

BERTH_VERSION = "0.1.0"

# The JupyterHub releases Berth's spawners and authenticators run in: pyproject.toml declares
# the same range (a unit test keeps the two in step) and the integration suite runs a hub on
# each release of JUPYTERHUB_TESTED (tests/integration/test_hub_versions.py).
JUPYTERHUB_SUPPORTED = ">=5.5,<7"
JUPYTERHUB_TESTED = ("5.5.4", "6.1.1")

# The release the hub image runs (`berth up`), and so the one scripts/setup.sh installs on the
# host: the CLI and the tests' own hubs run what the deployment runs.
JUPYTERHUB_HUB_VERSION = "6.1.1"
# The release whose jupyterhub-singleuser the notebook images carry (berth/base-notebook and every
# image built on it). It stays behind the hub's: base-notebook's lazy_hub_imports.py edits this
# release's files (checked by sha256). A JupyterHub 6 hub serves it (docs/spawner.md, tested by
# tests/integration/test_hub_versions.py and every deployment test).
JUPYTERHUB_SINGLEUSER_VERSION = "5.5.4"

# uv, which installs the Python packages of the hub and base-notebook images (from the package
# index, during their build only; docs/images.md, "The cold path").
UV_VERSION = "0.13.9"

# The pins an image's Dockerfile may take as build arguments (berth.images.catalog.ImageDef.pins),
# by the name of the Dockerfile's ARG. base-notebook's ARG kept its first name, JUPYTERHUB_VERSION:
# renaming it would change the cache key of its install step and rebuild every notebook image.
PINS = {
    "JUPYTERHUB_VERSION": JUPYTERHUB_SINGLEUSER_VERSION,
    "JUPYTERHUB_HUB_VERSION": JUPYTERHUB_HUB_VERSION,
    "UV_VERSION": UV_VERSION,
}
