"""Version pins shared by the package, the images and the tests (one place to change them)."""

BERTH_VERSION = "0.1.0"

# The single-user images must carry the same JupyterHub as the hub (jupyterhub-singleuser speaks
# the hub's API); pyproject.toml pins the same version and a unit test keeps the two in step.
JUPYTERHUB_VERSION = "6.1.1"
