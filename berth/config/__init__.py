"""berth.yaml: schema, loading, and translation into JupyterHub configuration."""

from berth.config.errors import ConfigError, Problem
from berth.config.load import DEFAULT_CONFIG_NAME, config_from_data, load_config
from berth.config.schema import BerthConfig
from berth.config.userlist import UserlistEntry, UserlistError, parse_userlist

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "BerthConfig",
    "ConfigError",
    "Problem",
    "UserlistEntry",
    "UserlistError",
    "config_from_data",
    "load_config",
    "parse_userlist",
]
