"""Structured logging: one JSON object per line (or one readable line on a terminal),
personal data masked.

Processors are plain functions (structlog style). ``mask_personal_data`` runs
on every event, whatever logged it, so an ID number that slips into a path or
an error message still never reaches the log in full. With tracing on, every
line carries the ``trace_id`` of the span it was written in.

Mock national systems run beside the gateway in a thread of their own: their
uvicorn servers' start/stop lines would repeat the gateway's under the same
logger names, and a mock's litestar app would replace the root handlers with
its own (``kept``). Neither reaches the gateway's output.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, TextIO, cast

import msgspec
import structlog
from structlog.typing import EventDict, WrappedLogger

from gateway import tracing
from gateway.config.model import LoggingSettings
from gateway.personaldata import mask_value

# Filled by the gateway from its own configuration or vocabulary, never from a
# request: nothing personal can be in them, so the hot path skips them.
GATEWAY_VALUES = frozenset(
    {
        "level",
        "timestamp",
        "logger",
        "method",
        "client",
        "route",
        "upstream",
        "operation",
        "error_code",
        "error_source",
        "message_id",
    }
)


_MASKABLE = (str, dict, list, tuple)
"""A tuple, not ``str | dict | ...``: that union is built anew at every call (0.7 µs)."""


def mask_personal_data(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    return _masked(event, GATEWAY_VALUES)


def _masked(event: EventDict, safe: frozenset[str]) -> EventDict:
    """Every value but those under ``safe`` keys with personal data masked, in place."""
    for key, value in event.items():
        if key not in safe and isinstance(value, _MASKABLE):
            event[key] = mask_value(value)
    return event


def render_json(_: WrappedLogger, __: str, event: EventDict) -> bytes:
    return msgspec.json.encode(event, enc_hook=str)


def add_trace_id(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    if tracing.enabled() and "trace_id" not in event:
        trace_id = tracing.current_trace_id()
        if trace_id is not None:
            event["trace_id"] = trace_id
    return event


_REQUEST_DETAILS = ("client", "route", "upstream", "error_code", "attempts", "trace_id")


class ConsoleLines:
    """A person's view: the request line as ``GET /path 200 3.1ms client=…``, others as structlog's
    console renderer writes them."""

    def __init__(self, colors: bool) -> None:
        self._other = structlog.dev.ConsoleRenderer(colors=colors)

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> str:
        if event.get("event") != "request" or "status" not in event:
            return self._other(logger, name, event)
        stamp = str(event.get("timestamp", ""))[11:19]
        head = (
            f"{stamp} {event.get('method', '')} {event.get('path', '')} "
            f"{event['status']} {event.get('duration_ms', 0):.1f}ms"
        )
        details = [f"{key}={event[key]}" for key in _REQUEST_DETAILS if key in event]
        return " ".join([head, *details, f"request_id={event.get('request_id', '')}"])


def console_wanted(settings: LoggingSettings, stream: BinaryIO | None) -> bool:
    """``auto`` means console for a person at a terminal, JSON for a collector."""
    if settings.format != "auto":
        return settings.format == "console"
    return stream is None and sys.stdout.isatty()


MOCK_THREAD = "mock-national-systems"
"""Name of the thread the mock national systems run in (``gateway.mockrunner``)."""


class _NotMockServers(logging.Filter):
    """Drop the mock servers' uvicorn start/stop lines; their warnings still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.threadName == MOCK_THREAD
            and record.name.startswith("uvicorn")
            and record.levelno < logging.WARNING
        )


# Libraries that log every request at INFO with full URLs (which can hold an ID).
QUIET_LIBRARIES = ("httpx", "httpcore", "zeep")


def configure(settings: LoggingSettings, stream: BinaryIO | None = None) -> None:
    """Set up logging for the whole process; ``stream`` defaults to stdout.

    The gateway logs through structlog; the standard library loggers of
    uvicorn, httpx and zeep are routed through the same processors, so their
    lines are JSON and masked too.
    """
    level = logging.getLevelNamesMapping()[settings.level.upper()]
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        add_trace_id,
        mask_personal_data,
    ]
    text = cast(TextIO, _TextOver(stream)) if stream else sys.stdout
    renderer: Any
    factory: Any
    if not console_wanted(settings, stream):
        renderer = render_json
        factory = structlog.BytesLoggerFactory(stream or sys.stdout.buffer)
        text_renderer: Any = lambda *args: render_json(*args).decode()  # noqa: E731
    else:
        renderer = text_renderer = ConsoleLines(colors=stream is None and sys.stdout.isatty())
        factory = structlog.PrintLoggerFactory(text)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(text)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, text_renderer],
        )
    )
    handler.addFilter(_NotMockServers())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    global _access, _access_lines
    _access = structlog.get_logger("gateway.access").bind()
    json_out = renderer is render_json
    _access_lines = AccessLines(stream or sys.stdout.buffer, level) if json_out else None


_access: Any = structlog.get_logger("gateway.access")
_access_lines: AccessLines | None = None

_LoggerState = tuple[list[logging.Handler], int, bool, bool, list[Any]]


def _state(logger: logging.Logger) -> _LoggerState:
    return list(logger.handlers), logger.level, logger.propagate, logger.disabled, logger.filters[:]


@contextmanager
def kept() -> Iterator[None]:
    """Logging exactly as ``configure`` left it, whatever runs inside.

    A litestar app built with its default ``logging_config`` (a mock's, say)
    runs ``dictConfig``: root's handlers replaced, loggers of its own that do
    not propagate. Every logger is put back as it was; loggers made inside
    lose what they were given and propagate to root, to our handler.
    """
    loggers = logging.Logger.manager.loggerDict
    before = {
        name: _state(logger)
        for name, logger in loggers.items()
        if isinstance(logger, logging.Logger)
    }
    root = logging.getLogger()
    root_before = _state(root)
    try:
        yield
    finally:
        for name, logger in list(loggers.items()):
            if isinstance(logger, logging.Logger):
                _restore(logger, before.get(name, ([], logging.NOTSET, True, False, [])))
        _restore(root, root_before)


def _restore(logger: logging.Logger, state: _LoggerState) -> None:
    logger.handlers[:], level, logger.propagate, logger.disabled, logger.filters[:] = state
    logger.setLevel(level)


def access(level: str, fields: dict[str, Any]) -> None:
    """Write the one line of a request: JSON straight from ``fields`` when the log is JSON,
    else through a logger bound once per ``configure()`` (a module-level lazy proxy would
    rebuild its logger on every call)."""
    if _access_lines is not None:
        _access_lines.write(level, fields)
    else:
        getattr(_access, level)("request", **fields)


_LEVELS = {"info": logging.INFO, "error": logging.ERROR}
ACCESS_SAFE = GATEWAY_VALUES | {"request_id"}
"""Access line fields never masked: the gateway's own, and the request id (masked when it was
taken, ``gateway.exchange``). Numbers are never masked; the path and what a route adds (bodies,
an upstream's words) always are."""


class AccessLines:
    """The access line as the JSON processors would write it (same keys, same order, same
    timestamp format), without structlog's processor chain: a fifth of a stub request's CPU.

    Written and flushed under structlog's lock for the stream, as its other lines are.
    """

    def __init__(self, stream: BinaryIO, level: int) -> None:
        self._out = structlog.BytesLogger(stream)
        self._level = level
        self._second = -1
        self._prefix = ""

    def write(self, level: str, fields: dict[str, Any]) -> None:
        if _LEVELS[level] < self._level:
            return
        _masked(fields, ACCESS_SAFE)
        fields["event"] = "request"
        fields["level"] = level
        fields["timestamp"] = self._timestamp()
        add_trace_id(None, level, fields)
        self._out.msg(render_json(None, level, fields))

    def _timestamp(self) -> str:
        """``datetime.now(utc).isoformat()`` with ``Z``, the date and time formatted once a
        second."""
        now = time.time_ns() // 1000
        second, micro = divmod(now, 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{micro:06d}Z" if micro else f"{self._prefix}Z"


class _TextOver:
    """Text writes onto a binary stream it does not own (``TextIOWrapper`` would close it)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(text.encode())

    def flush(self) -> None:
        self._stream.flush()
