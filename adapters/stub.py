"""``type: stub``: an in-process upstream defined in YAML, for integrators and tests.

Each operation answers with a reply chosen by ``cases`` (first whose ``when``
matches the request) or its ``reply``. Bodies are templates: a string
``{{ body.so_dinh_danh }}`` is replaced from the request (``body``, ``path``,
``query``, ``headers``, ``request_id``, ``client_id``, ``route_id``,
``operation``, ``now``, ``now_compact``); a string that is only one
placeholder keeps the value's type. Latency and faults (``timeout``,
``unavailable``, ``error``, ``malformed``) are injected by rate, or on demand
with the ``X-Stub-Fault`` request header.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import os
import random
import re
from collections import Counter
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import msgspec

from adapters.base import (
    AdapterContext,
    AdapterSettings,
    GatewayRequest,
    GatewayResponse,
    UpstreamHealth,
)
from adapters.bodies import BodyInvalid, decode_json
from adapters.errors import UpstreamError, UpstreamUnavailable
from adapters.units import Duration, seconds

Rate = Annotated[float, msgspec.Meta(ge=0.0, le=1.0, description="a probability from 0 to 1")]
Fault = Literal["timeout", "unavailable", "error", "malformed"]
FAULT_HEADER = "x-stub-fault"
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")


class Faults(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    timeout: Rate = 0.0
    unavailable: Rate = 0.0
    error: Rate = 0.0
    malformed: Rate = 0.0


class Reply(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: Annotated[int, msgspec.Meta(ge=100, le=599)] = 200
    body: Any = None
    """A template: a mapping/list (sent as JSON) or a string."""
    body_file: str | None = None
    """Template file, relative to the config file; ``.json`` files are parsed first."""
    content_type: str = "application/json"
    headers: dict[str, str] = {}
    latency: Duration | None = None


class Case(Reply, kw_only=True, forbid_unknown_fields=True):
    when: dict[str, Any]
    """``{"body.so_dinh_danh": "001203012345"}``: all must equal; a list means any of."""


class Operation(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reply: Reply = msgspec.field(default_factory=Reply)
    cases: list[Case] = []


class StubSettings(AdapterSettings, kw_only=True, forbid_unknown_fields=True):
    operations: dict[str, Operation]
    """Operation name (the route's ``operation``) -> how to answer."""
    latency: Duration = "0ms"
    faults: Faults = msgspec.field(default_factory=Faults)
    fault_header: bool = True
    """Honour ``X-Stub-Fault: timeout|unavailable|error|malformed`` on requests."""
    seed: int | None = None
    """Fix the random fault sequence (tests)."""


class StubAdapter:
    Settings = StubSettings

    def __init__(self, name: str, settings: StubSettings, context: AdapterContext) -> None:
        self.name = name
        self.settings = settings
        self.random = random.Random(settings.seed)
        self.calls: Counter[str] = Counter()
        self._files = {
            reply.body_file: _read_template(os.path.join(context.config_dir, reply.body_file))
            for operation in settings.operations.values()
            for reply in (operation.reply, *operation.cases)
            if reply.body_file
        }
        self._bodies = {
            id(reply): self._compile(reply)
            for operation in settings.operations.values()
            for reply in (operation.reply, *operation.cases)
        }
        """Each reply's body, built once: bytes if it names nothing from the request."""

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        self.calls[request.operation] += 1
        operation = self.settings.operations.get(request.operation)
        if operation is None:
            raise UpstreamError(f"stub {self.name!r} has no operation {request.operation!r}")
        context = _Context(request)
        reply = next((c for c in operation.cases if _matches(c.when, context)), operation.reply)
        latency = seconds(reply.latency or self.settings.latency)
        if latency:
            await asyncio.sleep(latency)
        fault = self._fault(request)
        if fault == "timeout":
            await asyncio.sleep(request.remaining() + 1.0)  # the gateway's deadline ends it
        if fault == "unavailable":
            raise UpstreamUnavailable(f"stub {self.name!r}: connection refused (injected)")
        if fault == "error":
            return GatewayResponse(status=503, body=b'{"error": "injected fault"}')
        if fault == "malformed":
            return GatewayResponse(
                status=200, body=b'{"truncated": ', content_type=reply.content_type
            )
        return GatewayResponse(
            status=reply.status,
            body=self._render(reply, context),
            content_type=reply.content_type,
            headers=dict(reply.headers),
        )

    def _fault(self, request: GatewayRequest) -> Fault | None:
        if self.settings.fault_header:
            asked = request.headers.get(FAULT_HEADER)
            if asked in ("timeout", "unavailable", "error", "malformed"):
                return asked  # type: ignore[return-value]
        rates = self.settings.faults
        for fault in ("timeout", "unavailable", "error", "malformed"):
            rate = getattr(rates, fault)
            if rate and self.random.random() < rate:
                return fault
        return None

    def _render(self, reply: Reply, context: _Context) -> bytes:
        body = self._bodies[id(reply)]
        return body if isinstance(body, bytes) else body(context)

    def _compile(self, reply: Reply) -> bytes | Callable[[_Context], bytes]:
        template = self._files[reply.body_file] if reply.body_file else reply.body
        if template is None:
            return b""
        if isinstance(template, str):
            escape = html.escape if "xml" in reply.content_type else str
            if _PLACEHOLDER.search(template) is None:
                return template.encode()
            return lambda context: _fill_text(template, context, escape).encode()
        fill = _compiled(template)
        if not callable(fill):
            return msgspec.json.encode(fill)
        return lambda context: msgspec.json.encode(fill(context))

    async def check(self) -> UpstreamHealth:
        return UpstreamHealth(state="up", detail="in-process stub")

    async def aclose(self) -> None:
        return None


def _read_template(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    return json.loads(text) if path.endswith(".json") else text


class _Context:
    """What templates may name, each value computed only if a template asks for it."""

    def __init__(self, request: GatewayRequest) -> None:
        self.request = request
        self._values: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        if name not in self._values:
            self._values[name] = self._compute(name)
        return self._values[name]

    def _compute(self, name: str) -> Any:
        request = self.request
        if name == "body":
            return request.data if request.data is not None else _json_or_none(request)
        if name == "path":
            return request.path_params
        if name == "query":
            return dict(parse_qsl(request.query))
        if name == "headers":
            return request.headers
        if name in ("request_id", "client_id", "route_id", "operation"):
            return getattr(request, name)
        if name == "now":
            return dt.datetime.now(VIETNAM).isoformat(timespec="seconds")
        if name == "now_compact":
            return dt.datetime.now(VIETNAM).strftime("%Y%m%d%H%M%S")
        return None


def _json_or_none(request: GatewayRequest) -> Any:
    """The body as JSON on routes without a schema (the pipeline decodes only validated ones)."""
    if "json" not in request.content_type or not request.body:
        return None
    try:
        return decode_json(request.body)
    except BodyInvalid:
        return None


def _lookup(context: _Context, dotted: str) -> Any:
    root, *rest = dotted.split(".")
    value = context.get(root)
    for part in rest:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _matches(when: dict[str, Any], context: _Context) -> bool:
    for path, expected in when.items():
        actual = _lookup(context, path)
        if isinstance(expected, list) and actual not in expected:
            return False
        if not isinstance(expected, list) and actual != expected:
            return False
    return True


def _compiled(template: Any) -> Any:
    """``template`` as a function of the request's values, or itself if it names none."""
    if isinstance(template, dict):
        items = [(key, _compiled(value)) for key, value in template.items()]
        if not any(callable(value) for _, value in items):
            return template
        return lambda context: {
            key: value(context) if callable(value) else value for key, value in items
        }
    if isinstance(template, list):
        values = [_compiled(value) for value in template]
        if not any(callable(value) for value in values):
            return template
        return lambda context: [value(context) if callable(value) else value for value in values]
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole is not None:
            name = whole[1]
            return lambda context: _lookup(context, name)
        if _PLACEHOLDER.search(template) is not None:
            return lambda context: _fill_text(template, context, str)
    return template


def _fill_text(template: str, context: _Context, escape: Any) -> str:
    def substitute(match: re.Match[str]) -> str:
        value = _lookup(context, match[1])
        return "" if value is None else escape(str(value))

    return _PLACEHOLDER.sub(substitute, template)
