"""The HTTP application: a few fixed endpoints, and everything else to the pipeline.

Fixed endpoints (health, API docs, metrics, and the admin API and console
under ``/admin``) are ordinary litestar handlers. All other paths go from
the edge (``_edge``, before litestar's routing) straight to
``gateway.pipeline``, matched against the *current* runtime: that is what
lets a reload change every route without rebuilding the app.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from litestar import Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Receive, Scope, Send

from adapters.logs import get_logger
from gateway import __version__, health, openapi, pipeline, tracing
from gateway.admin import admin_router, holder_of, metrics_page
from gateway.admission import Admission
from gateway.config.loader import LoadedConfig
from gateway.console import console_router
from gateway.exchange import Exchange, begin, echoing, exchange_of, finish
from gateway.mockrunner import MockThread, start_configured
from gateway.persistence import Persistence
from gateway.problems import Problem
from gateway.reloading import RuntimeHolder

log = get_logger(__name__)

ADMIN_PREFIX = "/admin"
CONSOLE_PREFIX = "/admin/ui"
"""The console signs its users in itself (a session cookie), so the edge lets it through."""
_API_KEY = b"x-api-key"
_STATUS_CODES = {
    400: "malformed_body",
    404: "route_not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


@get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "live", "version": __version__}


@get("/health/ready")
async def ready(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
    """``ready`` or ``degraded``; the config and each upstream's state only with the admin key."""
    holder = holder_of(request)
    if not holder.started:
        raise Problem("not_ready", "configuration not loaded yet")
    report = await health.readiness(holder.current)
    try:
        admin = await holder.current.identity.admin(dict(request.headers))
    except Problem:  # a token that is no admin's: the short answer, as without one
        admin = None
    if admin is None:
        report = {"status": report["status"]}
    return Response(report, status_code=200)


@get("/schema/openapi.json")
async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return openapi.openapi(holder_of(request).current)


@get("/docs", media_type="text/html")
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
        return Problem(_STATUS_CODES[exc.status_code], str(exc.detail), headers=exc.headers)
    log.error("unexpected_error", request_id=request_id, exc_info=exc)
    return Problem("internal_error", f"see the gateway log for request {request_id}")


def _fixed_endpoints(app: Litestar) -> dict[str, list[str]]:
    """Path -> the methods its handlers serve (HEAD wherever GET), OPTIONS left out."""
    endpoints: dict[str, list[str]] = {}
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            methods = set(route.methods) - {"OPTIONS"}
            if "GET" in methods:
                methods.add("HEAD")
            endpoints[route.path] = sorted(methods)
    return endpoints


def _edge(app: Litestar, holder: RuntimeHolder, state: State) -> ASGIApp:
    """What every request passes before routing, fixed endpoints and data plane alike.

    It opens and closes the request's exchange (``gateway.exchange``). Refused
    here: a repeated ``X-API-Key`` (which one would count?), dot segments
    (they would mean another path after any normalisation), and on fixed
    endpoints a method they do not serve (405 with ``Allow``, litestar's
    automatic OPTIONS answer included). Under ``/admin`` nothing answers,
    not even 405 or 404, before the admin key is shown.

    Then the data plane goes straight to the pipeline; only fixed endpoints
    pass litestar's routing and middleware (they cost half the pipeline's time
    on every request when the data plane was a litestar mount).
    """
    fixed = _fixed_endpoints(app)
    inner = app.asgi_handler

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await inner(scope, receive, send)
            return
        exchange, scope = begin(scope)
        to_litestar = _is_fixed(scope["path"], fixed)
        with tracing.exchange_span(scope["headers"], exchange.method) as span:
            try:
                try:
                    await _refuse_at_edge(scope, exchange, fixed)
                except Problem as problem:
                    answer = pipeline.problem_answer(problem, exchange)
                    await pipeline.send_answer(send, answer, exchange)
                    return
                if to_litestar:
                    await inner(scope, receive, echoing(exchange, send))
                else:
                    try:
                        await pipeline.handle(holder, state.admission, scope, receive, send)
                    except Exception as exc:
                        await _escaped(exc, exchange, send)
            finally:
                finish(exchange, span, scope.get("path_template") if to_litestar else None)

    return edge


async def _escaped(exc: Exception, exchange: Exchange, send: Send) -> None:
    """The pipeline answers its own errors; what escapes it (say, a message log that fails
    otherwise than unavailable) is ``internal_error`` as litestar's would be, never a 500 page."""
    if exchange.status:  # the answer is out: nothing left to mend
        raise exc
    problem = _as_problem(exc, exchange.request_id)
    await pipeline.send_answer(send, pipeline.problem_answer(problem, exchange), exchange)


def _is_fixed(path: str, fixed: dict[str, list[str]]) -> bool:
    """Is ``path`` for litestar (a fixed endpoint, or under ``/admin``) or the data plane?"""
    return path.rstrip("/") in fixed or path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


async def _refuse_at_edge(scope: Scope, exchange: Exchange, fixed: dict[str, list[str]]) -> None:
    keys = [value for name, value in scope["headers"] if name == _API_KEY]
    if len(keys) > 1:
        raise Problem("duplicate_header", "X-API-Key must be sent once")
    path = exchange.path
    if "/." in path and any(segment in (".", "..") for segment in path.split("/")):
        raise Problem("path_invalid", "dot segments ('.', '..') are not accepted in paths")
    console = path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")
    if not console and (path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")):
        holder: RuntimeHolder = scope["litestar_app"].state.holder
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        if await holder.current.identity.admin(headers) is None:
            raise Problem(
                "unauthenticated", "admin credential required (X-API-Key or a bearer token)"
            )
        if path not in fixed:
            raise Problem("route_not_found", f"no admin endpoint {path}")
    allowed = fixed.get(path)
    if allowed is not None and exchange.method not in allowed:  # HEAD came as GET
        raise Problem(
            "method_not_allowed",
            f"{path} accepts {', '.join(allowed)}",
            headers={"allow": ", ".join(allowed)},
        )


def create_app(
    config_path: str,
    *,
    loaded: LoadedConfig | None = None,
    handle_sighup: bool = False,
    run_mocks: bool = True,
) -> Litestar:
    """Build the app; the config is loaded and adapters built on startup.

    ``run_mocks``: start the config's mock national systems with the app (``serve
    --workers N`` runs them once, in its parent process, instead)."""
    holder = RuntimeHolder(config_path)
    state = State({"holder": holder})

    mock_thread: MockThread | None = None

    async def startup() -> None:
        nonlocal mock_thread
        holder.start(loaded)
        state.admission = Admission.of(holder.current.loaded.config.server)
        if run_mocks:
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

    app = Litestar(
        route_handlers=[
            *(live, ready, admin_router, console_router, openapi.explorer_router),
            *(metrics_page, openapi_json, docs),
        ],
        exception_handlers={Exception: problem_response},
        on_startup=[startup],
        on_shutdown=[shutdown],
        state=state,
        openapi_config=None,
        logging_config=None,  # gateway.logs owns logging (masking, JSON)
        debug=False,
    )
    app.asgi_handler = _edge(app, holder, state)  # outside routing: litestar's 405 gets an id too
    return app
