"""berth.yaml: schema, loading, and translation into JupyterHub configuration.

Typical use (what `berth up` does)::

    cfg = load_config(path, missing_ok=path_is_the_default)     # ConfigError on any problem
    runtime = HubRuntime()  # the hub container of berth.hub_container
    config_py = render_config_py(to_jupyterhub_config(cfg, runtime))
    secrets = hub_secret_files(cfg, runtime)                    # write each, mode 600
"""

from berth.config.errors import ConfigError, Problem
from berth.config.load import DEFAULT_CONFIG_NAME, config_from_data, load_config
from berth.config.runtime import HubRuntime
from berth.config.schema import BerthConfig
from berth.config.translate import (
    SecretFile,
    UnresolvedConfigError,
    hub_secret_files,
    render_config_py,
    to_jupyterhub_config,
)
from berth.config.userlist import UserlistEntry, UserlistError, parse_userlist

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "BerthConfig",
    "ConfigError",
    "HubRuntime",
    "Problem",
    "SecretFile",
    "UnresolvedConfigError",
    "UserlistEntry",
    "UserlistError",
    "config_from_data",
    "hub_secret_files",
    "load_config",
    "parse_userlist",
    "render_config_py",
    "to_jupyterhub_config",
]
