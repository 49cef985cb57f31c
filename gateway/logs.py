"""Structured logging: one JSON object per line, personal data masked.

Processors are plain functions (structlog style). ``mask_personal_data`` runs
on every event, whatever logged it, so an ID number that slips into a path or
an error message still never reaches the log in full.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from typing import Any, BinaryIO

import msgspec
import structlog
from structlog.typing import EventDict, WrappedLogger

from gateway.config.model import LoggingSettings

# 12-digit personal ID (CCCD) and 9-digit old ID card (CMND), not inside longer numbers.
_ID_NUMBER = re.compile(r"(?<![0-9])([0-9]{3})([0-9]{3}|[0-9]{6})([0-9]{3})(?![0-9])")


def mask_id_numbers(text: str) -> str:
    """Keep the first and last three digits, as the population database rules ask."""
    return _ID_NUMBER.sub(lambda m: m[1] + "*" * len(m[2]) + m[3], text)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_id_numbers(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v) for v in value]
    return value


def mask_personal_data(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    for key, value in event.items():
        if isinstance(value, str | dict | list | tuple):
            event[key] = _mask(value)
    return event


def render_json(_: WrappedLogger, __: str, event: EventDict) -> bytes:
    return msgspec.json.encode(event, enc_hook=str)


def configure(settings: LoggingSettings, stream: BinaryIO | None = None) -> None:
    """Set up structlog for the whole process; ``stream`` defaults to stdout."""
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    renderer: Any
    factory: Any
    if settings.format == "json":
        renderer = render_json
        factory = structlog.BytesLoggerFactory(stream or sys.stdout.buffer)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        text = io.TextIOWrapper(stream, write_through=True) if stream else sys.stdout
        factory = structlog.PrintLoggerFactory(text)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_personal_data,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "gateway") -> Any:
    return structlog.get_logger(name)
