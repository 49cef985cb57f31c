"""Configuration: the YAML an administrator writes, typed and checked as a whole.

``load_config(path)`` returns a ``LoadedConfig`` or raises ``ConfigInvalid``
carrying every problem found, each with file, line and key path.
"""

from gateway.config.loader import ConfigInvalid, ConfigIssue, LoadedConfig, load_config
from gateway.config.model import GatewayConfig

__all__ = ["ConfigInvalid", "ConfigIssue", "GatewayConfig", "LoadedConfig", "load_config"]
