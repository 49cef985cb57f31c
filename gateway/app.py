"""The HTTP application: a few fixed endpoints, and everything else to the pipeline.

Fixed endpoints (health, API docs, the status of queued messages, and the
admin API of ``gateway.admin``) are ordinary litestar handlers. All other
paths go to an ASGI mount and from there through ``gateway.pipeline``,
matched against the *current* runtime: that is what lets a reload change
every route without rebuilding the app.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from litestar import Litestar, Request, Response, asgi, get
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.types import Receive, Scope, Send

from adapters.logs import get_logger
from gateway import __version__, health, openapi, pipeline
from gateway.admin import admin_router, holder_of, metrics_page
from gateway.admission import Admission
from gateway.config.loader import LoadedConfig
from gateway.exchange import exchange_middleware, exchange_of
from gateway.mockrunner import MockThread, start_configured
from gateway.persistence import Persistence
from gateway.problems import Problem
from gateway.reloading import RuntimeHolder

log = get_logger(__name__)

_STATUS_CODES = {
    400: "malformed_body",
    404: "route_not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


@asgi("/", is_mount=True, copy_scope=False)  # the pipeline never mutates the scope
async def data_plane(scope: Scope, receive: Receive, send: Send) -> None:
    """Every path that is not a fixed endpoint: the configured routes."""
    state = scope["litestar_app"].state
    await pipeline.handle(state.holder, state.admission, scope, receive, send)


@get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "live", "version": __version__}


@get("/health/ready")
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    holder = holder_of(request)
    if not holder.started:
        raise Problem("not_ready", "configuration not loaded yet")
    report = await health.readiness(holder.current)
    return Response(report, status_code=200)


@get("/schema/openapi.json")
async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return openapi.openapi(holder_of(request).current)


@get(["/schema", "/docs"], media_type="text/html")
async def docs(request: Request[Any, Any, Any]) -> str:
    return openapi.docs_page(holder_of(request).current)


def problem_response(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Errors of the fixed endpoints, as problem+json; never a traceback."""
    exchange = exchange_of(request.scope)
    if not isinstance(exc, Problem):
        exc = _as_problem(exc, exchange.request_id)
    status, headers, body, media_type = pipeline.problem_answer(exc, exchange)
    return Response(content=body, status_code=status, media_type=media_type, headers=headers)


def _as_problem(exc: Exception, request_id: str) -> Problem:
    if isinstance(exc, HTTPException) and exc.status_code in _STATUS_CODES:
        return Problem(_STATUS_CODES[exc.status_code], str(exc.detail))
    log.error("unexpected_error", request_id=request_id, exc_info=exc)
    return Problem("internal_error", f"see the gateway log for request {request_id}")


def create_app(
    config_path: str,
    *,
    loaded: LoadedConfig | None = None,
    handle_sighup: bool = False,
) -> Litestar:
    """Build the app; the config is loaded and adapters built on startup."""
    holder = RuntimeHolder(config_path)
    state = State({"holder": holder})

    mock_thread: MockThread | None = None

    async def startup() -> None:
        nonlocal mock_thread
        holder.start(loaded)
        state.admission = Admission.of(holder.current.loaded.config.server)
        mock_thread = start_configured(holder.current.loaded.config.mocks)
        holder.persistence = await Persistence.start(
            holder.current.loaded,
            resolve=lambda route, upstream: holder.current.delivery_target(route, upstream),
            serves=lambda upstream: upstream in holder.current.adapters,
        )
        await holder.start_hosted()
        if handle_sighup:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, _reload_on_signal)

    def _reload_on_signal() -> None:
        log.info("sighup_received")
        task = asyncio.ensure_future(holder.reload())
        _signal_tasks.add(task)
        task.add_done_callback(_signal_tasks.discard)

    _signal_tasks: set[asyncio.Future[Any]] = set()

    async def shutdown() -> None:
        if holder.persistence is not None:
            await holder.persistence.close()
        await holder.close()
        if mock_thread is not None:
            mock_thread.stop()

    return Litestar(
        route_handlers=[live, ready, admin_router, metrics_page, openapi_json, docs, data_plane],
        middleware=[exchange_middleware],
        exception_handlers={Exception: problem_response},
        on_startup=[startup],
        on_shutdown=[shutdown],
        state=state,
        openapi_config=None,
        logging_config=None,  # gateway.logs owns logging (masking, JSON)
        debug=False,
    )
