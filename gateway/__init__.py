"""LGSP integration gateway: the core (config, request pipeline, HTTP app)."""

__version__ = "0.1.0"
