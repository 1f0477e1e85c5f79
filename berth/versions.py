"""Version pins shared by the package, the images and the tests (one place to change them)."""

BERTH_VERSION = "0.1.0"

# The JupyterHub releases Berth's spawners and authenticators run in: pyproject.toml declares
# the same range (a unit test keeps the two in step) and the integration suite runs a hub on
# each release of JUPYTERHUB_TESTED (tests/integration/test_hub_versions.py).
JUPYTERHUB_SUPPORTED = ">=5.5,<7"
JUPYTERHUB_TESTED = ("5.5.4", "6.1.1")

# The release the images carry (the hub image and jupyterhub-singleuser in the notebook images).
JUPYTERHUB_VERSION = "5.5.4"

# The pins an image's Dockerfile may take as build arguments (berth.images.catalog.ImageDef.pins).
PINS = {"JUPYTERHUB_VERSION": JUPYTERHUB_VERSION}
