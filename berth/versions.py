"""Version pins shared by the package, the images and the tests (one place to change them)."""

BERTH_VERSION = "0.1.0"

# The single-user images must carry the same JupyterHub as the hub (jupyterhub-singleuser speaks
# the hub's API); pyproject.toml pins the same version and a unit test keeps the two in step.
# 5.5.x, not 6: NativeAuthenticator 1.3.0 (the latest, used for local accounts) still calls the
# hub's statsd client, which JupyterHub 6 removed, and every login fails with a 500 there.
JUPYTERHUB_VERSION = "5.5.4"

# The pins an image's Dockerfile may take as build arguments (berth.images.catalog.ImageDef.pins).
PINS = {"JUPYTERHUB_VERSION": JUPYTERHUB_VERSION}
