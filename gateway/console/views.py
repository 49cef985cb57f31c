"""The console's pages under ``/admin/ui``: server-rendered HTML, one form per action.

Every page but sign-in needs a session (``sessions``); every POST carries the
session's CSRF token. What a page does is the admin API's own logic
(``gateway.admin``) or a count over the same tables (``stats``), so the
console and ``/admin/*`` never disagree. Ids travel in the query string: the
data plane's mount at ``/`` shadows routes with path parameters.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, TypeAlias

import jinja2
import msgspec
import sqlalchemy as sa
from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.response import Redirect

from adapters import registry
from gateway import admin, health
from gateway.auth import hash_key
from gateway.config.loader import ConfigInvalid, ConfigIssue, load_config
from gateway.config.model import key_hash
from gateway.console import stats
from gateway.console.i18n import LANG_COOKIE, LANGUAGES, translator
from gateway.console.sessions import COOKIE, LOGIN_COOKIE, Session, Sessions, same_token
from gateway.delivery import STATES
from gateway.exchange import exchange_of
from gateway.personaldata import mask_body
from gateway.problems import Problem
from gateway.reloading import RuntimeHolder
from gateway.runtime import Runtime, build_runtime
from gateway.store.tables import message_log

BASE = "/admin/ui"
SignedIn: TypeAlias = NamedDependency[Session]
"""A page's ``session`` parameter: the router provides it or answers with the sign-in page."""
SECURITY_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "credential", "auth")
HIDDEN = "•••"
MAX_UPLOAD = 50 * 1024 * 1024


@cache
def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.console", "templates"),
        autoescape=True,
    )
    environment.filters["local_time"] = stats.local_time
    environment.filters["percent"] = lambda value: f"{100 * value:.1f} %"
    return environment


@cache
def _static() -> dict[str, bytes]:
    folder = resources.files("gateway.console") / "static"
    return {item.name: item.read_bytes() for item in folder.iterdir() if item.is_file()}


def _holder(request: Request[Any, Any, Any]) -> RuntimeHolder:
    return admin.holder_of(request)


def _sessions(request: Request[Any, Any, Any]) -> Sessions:
    state = request.app.state
    if "console_sessions" not in state:
        state["console_sessions"] = Sessions()
    sessions: Sessions = state["console_sessions"]
    return sessions


def _lang(request: Request[Any, Any, Any]) -> str:
    lang = request.cookies.get(LANG_COOKIE, "vi")
    return lang if lang in LANGUAGES else "vi"


def _secure(request: Request[Any, Any, Any]) -> bool:
    return request.url.scheme == "https"


def _actor(session: Session) -> str:
    """Who did it, for the record: the console and the start of the admin key's hash."""
    return f"console:{session.key_hash.removeprefix('sha256:')[:12]}"


async def _recorded(
    request: Request[Any, Any, Any], session: Session, action: str, result: dict[str, Any]
) -> None:
    """A console action goes on the message log like the admin API's (``admin.recorded``)."""
    exchange_of(request.scope).client = _actor(session)
    await admin.recorded(request, action, result)


def _session(request: Request[Any, Any, Any]) -> Session | None:
    holder = _holder(request)
    keys = [key_hash(spec) for spec in holder.current.loaded.config.admin.api_keys]
    return _sessions(request).get(request.cookies.get(COOKIE), keys)


def _page(
    request: Request[Any, Any, Any],
    template: str,
    session: Session | None,
    status: int = 200,
    **context: Any,
) -> Response[str]:
    lang = _lang(request)
    body = (
        _templates()
        .get_template(template)
        .render(
            t=translator(lang),
            lang=lang,
            other_lang=LANGUAGES[1 - LANGUAGES.index(lang)],
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            csrf=session.csrf if session else "",
            signed_in=session is not None,
            base=BASE,
            **context,
        )
    )
    return Response(body, status_code=status, media_type="text/html", headers=SECURITY_HEADERS)


def _to_login(expired: bool = False) -> Redirect:
    return Redirect(f"{BASE}/login" + ("?expired=1" if expired else ""), status_code=303)


class SignInRequired(Exception):
    """No live session: every page but sign-in answers with the sign-in page instead."""


def _signed_in(request: Request[Any, Any, Any]) -> Session:
    """The ``session`` every console page takes; raises ``SignInRequired`` without one."""
    session = _session(request)
    if session is None:
        raise SignInRequired
    return session


def _sign_in_first(request: Request[Any, Any, Any], _: SignInRequired) -> Response[Any]:
    """A form posted without a session, or a page asked for with a stale cookie, says why."""
    return _to_login(request.method == "POST" or bool(request.cookies.get(COOKIE)))


async def _form(request: Request[Any, Any, Any], session: Session) -> Mapping[str, Any] | None:
    """The submitted form, or None when its CSRF token is not the session's."""
    form = await request.form()
    return form if same_token(session.csrf, form.get("csrf")) else None


def _refused(request: Request[Any, Any, Any], session: Session | None) -> Response[str]:
    return _page(request, "error.html", session, status=403, message_key="csrf_failed")


# --- signing in and out ------------------------------------------------------------


@get("/login")
async def login_page(request: Request[Any, Any, Any]) -> Response[str]:
    token = os.urandom(24).hex()
    response = _page(
        request,
        "login.html",
        None,
        login_csrf=token,
        error="expired" if request.query_params.get("expired") else "",
    )
    response.set_cookie(
        LOGIN_COOKIE, token, path=BASE, httponly=True, samesite="strict", secure=_secure(request)
    )
    return response


@post("/login", status_code=303)
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await request.form()
    if not same_token(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        return _refused(request, None)
    key = str(form.get("key") or "")
    if _holder(request).current.identity.admin_keys.lookup(key) is None:
        token = os.urandom(24).hex()
        response: Response[Any] = _page(
            request, "login.html", None, status=401, login_csrf=token, error="bad_key"
        )
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            path=BASE,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
        return response
    session = _sessions(request).open(hash_key(key))
    response = Redirect(BASE, status_code=303)
    response.set_cookie(
        COOKIE, session.id, path=BASE, httponly=True, samesite="strict", secure=_secure(request)
    )
    response.delete_cookie(LOGIN_COOKIE, path=BASE)
    return response


@post("/logout", status_code=303)
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    session = _session(request)
    if session is not None:
        if await _form(request, session) is None:
            return _refused(request, session)
        _sessions(request).close(session.id)
    response = _to_login()
    response.delete_cookie(COOKIE, path=BASE)
    return response


@get("/lang")
async def switch_language(request: Request[Any, Any, Any]) -> Redirect:
    lang = request.query_params.get("set", "vi")
    back = request.query_params.get("next", BASE)
    if not back.startswith(f"{BASE}") or back.startswith("//"):
        back = BASE
    response = Redirect(back, status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            lang,
            path=BASE,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            max_age=365 * 86400,
        )
    return response


@get("/static", media_type="text/plain")
async def static(request: Request[Any, Any, Any]) -> Response[bytes]:
    name = request.query_params.get("name", "")
    content = _static().get(name)
    if content is None:
        raise Problem("route_not_found", f"no console asset {name!r}")
    media = "text/css" if name.endswith(".css") else "text/javascript"
    return Response(content, media_type=media, headers={"cache-control": "max-age=3600"})


# --- dashboard ---------------------------------------------------------------------------


@get("/")
async def dashboard(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    holder = _holder(request)
    persistence = admin.persistence_of(holder)
    traffic, depth, dead, ready = await asyncio.gather(
        stats.traffic(persistence.store, stats.since_yesterday()),
        stats.queue_depth(persistence.store),
        persistence.queue.list("dead", limit=20),
        health.readiness(holder.current),
    )
    return _page(
        request,
        "dashboard.html",
        session,
        traffic=traffic,
        depth=depth,
        states=["queued", "delivering", "failed", "dead", "delivered", "discarded"],
        dead=dead,
        ready=ready,
    )


# --- message log -------------------------------------------------------------------------


@get("/messages")
async def messages(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    query = {k: v for k, v in request.query_params.items() if v}
    persistence = admin.persistence_of(_holder(request))
    error = None
    page: dict[str, Any] = {"items": [], "next_cursor": None}
    try:
        page = await admin.search_page(persistence, {**query, "limit": query.get("limit", "50")})
    except Problem as problem:
        error = problem.detail
    following = None
    if page["next_cursor"]:
        following = {**query, "cursor": page["next_cursor"]}
    return _page(
        request,
        "messages.html",
        session,
        query=query,
        page=page,
        error=error,
        following=following,
    )


@get("/messages/record")
async def record(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    """Every record of one message (accepted and delivered are two), bodies masked."""
    message_id = request.query_params.get("message_id", "")
    persistence = admin.persistence_of(_holder(request))
    page = await admin.search_page(persistence, {"message_id": message_id, "limit": "20"})
    bodies = await _bodies(persistence.store.engine, message_id)
    for item in page["items"]:
        request_body, response_body = bodies.get((item["log_id"], item["seq"]), (None, None))
        item["request_text"] = _masked(request_body)
        item["response_text"] = _masked(response_body)
        item["signature_text"] = _pretty(item["signature"]) if item.get("signature") else None
    return _page(request, "record.html", session, message_id=message_id, items=page["items"])


async def _bodies(
    engine: Any, message_id: str
) -> dict[tuple[str, int], tuple[bytes | None, bytes | None]]:
    c = message_log.c
    query = sa.select(c.log_id, c.seq, c.request_body, c.response_body).where(
        c.message_id == message_id
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return {(row.log_id, int(row.seq)): (row.request_body, row.response_body) for row in rows}


def _masked(body: bytes | None) -> str | None:
    """A stored body as text, personal data masked again (a route may keep it unmasked)."""
    if body is None:
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return f"({len(body)} bytes, binary)"
    masked = mask_body(body, "application/json", frozenset(registry.personal_fields()))
    try:
        return _pretty(msgspec.json.decode(masked))
    except msgspec.DecodeError:
        return masked.decode("utf-8", "replace")


def _pretty(value: Any) -> str:
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


@get("/messages/verify")
async def verify_chains(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    report = await admin.chain_report(admin.persistence_of(_holder(request)))
    return _page(request, "verify.html", session, report=report)


# --- deliveries --------------------------------------------------------------------------


@get("/deliveries")
async def deliveries(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    return await _deliveries_page(request, session, notice=request.query_params.get("notice"))


async def _deliveries_page(
    request: Request[Any, Any, Any],
    session: Session,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response[Any]:
    query = {k: v for k, v in request.query_params.items() if v and k in ("state", "message_id")}
    if not query:
        query = {"state": "dead"}
    queue = admin.persistence_of(_holder(request)).queue
    items: list[dict[str, Any]] = []
    try:
        items = await admin.delivery_page(queue, {**query, "limit": "200"})
    except Problem as problem:
        error = error or problem.detail
    return _page(
        request,
        "deliveries.html",
        session,
        status=status,
        query=query,
        items=items,
        notice=notice,
        error=error,
        states=list(STATES),
    )


@post("/deliveries/retry", status_code=303)
async def retry(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    form = await _form(request, session)
    if form is None:
        return _refused(request, session)
    message_id = str(form.get("message_id") or "") or None
    try:
        requeued = await admin.retry_dead(
            admin.persistence_of(_holder(request)).queue, admin.RetryRequest(message_id)
        )
    except Problem as problem:
        return await _deliveries_page(request, session, error=problem.detail, status=404)
    await _recorded(request, session, "retry", {"requeued": requeued})
    return Redirect(f"{BASE}/deliveries?state=dead&notice=requeued:{requeued}", status_code=303)


@post("/deliveries/discard", status_code=303)
async def discard(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    form = await _form(request, session)
    if form is None:
        return _refused(request, session)
    raw = msgspec.json.encode(
        {"message_id": str(form.get("message_id") or ""), "reason": str(form.get("reason") or "")}
    )
    queue = admin.persistence_of(_holder(request)).queue
    try:
        body = admin.typed_body(admin.DiscardRequest, raw)
        answer = await admin.discard(queue, body, by=_actor(session))
    except Problem as problem:
        detail = "; ".join(f"{e['path']}: {e['message']}" for e in problem.errors or [])
        return await _deliveries_page(
            request, session, error=detail or problem.detail, status=problem.status
        )
    await _recorded(request, session, "discard", answer)
    return Redirect(
        f"{BASE}/deliveries?state=discarded&notice=discarded:{body.message_id}", status_code=303
    )


# --- configuration -----------------------------------------------------------------------


def hide_secrets(value: Any, name: str = "") -> Any:
    """Settings as loaded, with every value that could be a credential replaced.

    Hidden: anything under a name that sounds like one (key, token, secret,
    password, credential, auth) and every header value (``Authorization``,
    ``ApiKey``... are headers).
    """
    lowered = name.lower()
    if value not in (None, "", [], {}) and any(word in lowered for word in _SECRET_WORDS):
        return HIDDEN
    if isinstance(value, dict):
        if lowered == "headers":
            return {k: HIDDEN for k in value}
        return {k: hide_secrets(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [hide_secrets(v, name) for v in value]
    return value


def _config_view(runtime: Runtime) -> dict[str, Any]:
    loaded = runtime.loaded
    config = loaded.config
    return {
        "path": loaded.path,
        "files": loaded.files,
        "digest": loaded.digest,
        "loaded_at": loaded.loaded_at,
        "routes": config.routes,
        "clients": config.clients,
        "upstreams": {
            name: {
                "type": spec.type,
                "settings": _pretty(hide_secrets(msgspec.to_builtins(spec.settings))),
            }
            for name, spec in sorted(loaded.upstreams.items())
        },
    }


@get("/config")
async def configuration(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    return _config_page(request, session)


def _config_page(
    request: Request[Any, Any, Any],
    session: Session,
    *,
    outcome: str = "",
    digest: str = "",
    issues: list[ConfigIssue] | None = None,
) -> Response[Any]:
    return _page(
        request,
        "config.html",
        session,
        status=422 if issues else 200,
        view=_config_view(_holder(request).current),
        outcome=outcome,
        digest=digest[:12],
        issues=issues or [],
    )


def _check_files(path: str) -> tuple[str, list[ConfigIssue]]:
    """What ``lgsp-gateway config check`` does: load, and let every adapter judge its settings."""
    try:
        loaded = load_config(path)
        runtime = build_runtime(loaded)
    except ConfigInvalid as exc:
        return "", exc.issues
    asyncio.run(runtime.close())  # in a worker thread: its own loop
    return loaded.digest, []


@post("/config/validate")
async def validate(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    if await _form(request, session) is None:
        return _refused(request, session)
    digest, issues = await asyncio.to_thread(_check_files, _holder(request).path)
    outcome = "config_invalid" if issues else "config_valid"
    return _config_page(request, session, outcome=outcome, digest=digest, issues=issues)


@post("/config/reload")
async def reload(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    if await _form(request, session) is None:
        return _refused(request, session)
    result = await _holder(request).reload()
    if not result.ok:
        return _config_page(request, session, outcome="config_invalid", issues=result.issues)
    await _recorded(request, session, "reload", {"status": "reloaded", "digest": result.digest})
    return _config_page(request, session, outcome="reloaded", digest=result.digest)


# --- signatures ----------------------------------------------------------------------------


@get("/signatures")
async def signatures_page(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    trusted = _holder(request).current.trust is not None
    return _page(request, "signatures.html", session, trusted=trusted, result=None, error="")


@post("/signatures", request_max_body_size=MAX_UPLOAD)
async def verify_upload(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    """Verify an uploaded edXML or PDF against the running configuration's trust store."""
    from gateway.signatures import SignaturePolicy, UnusableInput

    form = await _form(request, session)
    if form is None:
        return _refused(request, session)
    trust = _holder(request).current.trust
    upload = form.get("file")
    context: dict[str, Any] = {"trusted": trust is not None, "result": None, "error": ""}
    if trust is None:
        context["error"] = "no_trust"
    elif not isinstance(upload, UploadFile) or not upload.filename:
        context["error"] = "no_file"
    else:
        data = await upload.read()
        media = "application/pdf" if upload.filename.lower().endswith(".pdf") else "application/xml"
        try:
            result = await trust.verify(data, media, SignaturePolicy(mode="required"))
        except UnusableInput as exc:
            context["unusable"] = f"{exc.code}: {exc}"
        else:
            context["result"] = result
            context["filename"] = upload.filename
    status = 422 if context.get("unusable") else 200
    return _page(request, "signatures.html", session, status=status, **context)


# --- usage report --------------------------------------------------------------------------


def _client_names(runtime: Runtime) -> dict[str, str]:
    return {client.id: client.name for client in runtime.loaded.config.clients}


@get("/usage")
async def usage(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    try:
        month, start, end = stats.month_bounds(request.query_params.get("month"))
    except ValueError as exc:
        month, start, end = stats.month_bounds(None)
        error = str(exc)
    else:
        error = ""
    rows = await stats.usage(admin.persistence_of(_holder(request)).store, start, end)
    totals = stats.UsageRow(agency="", upstream="")
    for row in rows:
        for field in ("exchanges", "failed", *stats.USAGE_COUNTERS):
            setattr(totals, field, getattr(totals, field) + getattr(row, field))
    return _page(
        request,
        "usage.html",
        session,
        month=month,
        rows=rows,
        totals=totals,
        error=error,
        names=_client_names(_holder(request).current),
        counters=stats.USAGE_COUNTERS,
    )


@get("/usage.csv")
async def usage_csv(request: Request[Any, Any, Any], session: SignedIn) -> Response[Any]:
    try:
        month, start, end = stats.month_bounds(request.query_params.get("month"))
    except ValueError as exc:
        raise Problem("malformed_body", str(exc)) from None
    runtime = _holder(request).current
    rows = await stats.usage(admin.persistence_of(_holder(request)).store, start, end)
    return Response(
        stats.usage_csv(month, rows, _client_names(runtime)),
        media_type="text/csv; charset=utf-8",
        headers={
            **SECURITY_HEADERS,
            "content-disposition": f'attachment; filename="lgsp-usage-{month}.csv"',
        },
    )


console_router = Router(
    path=BASE,
    dependencies={"session": Provide(_signed_in, sync_to_thread=False)},
    exception_handlers={SignInRequired: _sign_in_first},
    route_handlers=[
        login_page,
        login,
        logout,
        switch_language,
        static,
        dashboard,
        messages,
        record,
        verify_chains,
        deliveries,
        retry,
        discard,
        configuration,
        validate,
        reload,
        signatures_page,
        verify_upload,
        usage,
        usage_csv,
    ],
)
