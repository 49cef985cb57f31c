"""Configuration: the YAML an administrator writes, typed and checked as a whole.

``gateway.config.loader.load_config(path)`` returns a ``LoadedConfig`` or raises
``ConfigInvalid`` carrying every problem found, each with file, line and key
path. The shape is ``gateway.config.model``; units are ``adapters.units``.
(Nothing is imported here: ``units`` is needed by modules the model imports.)
"""
