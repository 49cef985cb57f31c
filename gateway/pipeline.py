"""The request pipeline: one straight path from an agency's request to its answer.

    authenticate -> match route -> authorize -> rate limits -> admission (slots
    in flight) -> read body (size limit, idle gap, route deadline) -> validate
    against the route's schema -> signatures -> call the upstream through its
    adapter (breaker, deadline, retries) -> map the response -> record

(numbered so in docs/architecture.md). Each step either returns what the next one
needs or raises a ``Problem``.
The pipeline speaks ASGI directly (the edge of ``gateway.app`` calls it
before litestar): the data plane is the hot path, and building framework
request and response objects for every call cost a third of the gateway's
throughput. Request id and the access log line are the exchange's
(``gateway.exchange``), opened and closed by the edge.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import msgspec
from litestar.types import Message, Receive, Scope, Send

from adapters import bodies
from adapters.base import GatewayRequest, GatewayResponse
from adapters.bodies import BodyInvalid
from adapters.errors import RequestRejected, UpstreamError, UpstreamTimeout
from adapters.logs import get_logger
from adapters.units import seconds
from gateway import metrics, tracing
from gateway.admission import Admission, leave
from gateway.catalogue import api as catalogue_api
from gateway.catalogue.index import CATALOGUE_PATH, catalogue_of
from gateway.config.model import Client
from gateway.deadline import Deadline
from gateway.exchange import Exchange, exchange_of
from gateway.idempotency import HEADER as IDEMPOTENCY_HEADER
from gateway.identity import API_KEY_HEADER, Caller
from gateway.messagelog import AuditRecord, LogUnavailable, sha256_hex
from gateway.persistence import Persistence
from gateway.personaldata import mask_body, mask_id_numbers, public_detail
from gateway.problems import ERROR_SOURCE_HEADER, PROBLEM_MEDIA_TYPE, Problem
from gateway.reloading import RuntimeHolder
from gateway.routing import MethodNotAllowed, NoRoute
from gateway.runtime import CompiledRoute, Runtime
from gateway.signatures.policy import SignaturePolicy

if TYPE_CHECKING:
    from gateway.signatures.result import VerificationResult
from gateway.validation import body_problem

MESSAGE_ID_HEADER = b"x-lgsp-message-id"
REQUEST_ID = "x-request-id"
MESSAGES_PATH = "/v1/messages"
"""Where a client asks what became of a message it sent to an async route."""
MESSAGES_PREFIX = MESSAGES_PATH + "/"
SIGNATURE_HEADER = "x-lgsp-signature"
CLIENT_GONE = 499
"""Status recorded (never sent) when the caller left before its body arrived."""
CLIENT_HEADER = "x-lgsp-client"
# Never forwarded upstream: hop-by-hop headers, the caller's own credentials,
# and what the HTTP layer recomputes.
_NOT_FORWARDED = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
        "authorization",
        "cookie",
        "content-length",
        API_KEY_HEADER,
        CLIENT_HEADER,
    }
)
_JSON_TYPES = ("application/json",)
_XML_TYPES = ("application/xml", "text/xml")
LOGGED_BODY_LIMIT = 2048

log = get_logger(__name__)

Answer = tuple[int, dict[str, str], bytes, str]
"""Status, headers, body and media type of what the caller gets."""


class ClientGone(Exception):
    """The caller disconnected before sending its whole body: nobody to answer."""


async def handle(
    holder: RuntimeHolder, admission: Admission, scope: Scope, receive: Receive, send: Send
) -> None:
    """The ASGI entry of the data plane."""
    arrived = time.monotonic()  # the route's timeout runs from here: waiting counts
    exchange = exchange_of(scope)
    runtime = holder.current  # this request keeps this runtime, whatever reloads happen
    persistence = holder.persistence
    assert persistence is not None, "the app starts persistence before serving"
    runtime.inflight += 1
    context = Context(runtime, persistence, exchange, admission, arrived)
    try:
        try:
            answer = await _handle(context, scope, receive)
        except Problem as problem:
            answer = problem_answer(problem, exchange)
        except ClientGone:  # nobody to answer, but it happened: it goes on record (499)
            exchange.error_code = "client_disconnected"
            await record(context, (CLIENT_GONE, {}, b"", "text/plain"))
            return
        except Exception:
            log.exception("unexpected_error", request_id=exchange.request_id)
            hidden = f"see the gateway log for request {exchange.request_id}"
            answer = problem_answer(Problem("internal_error", hidden), exchange)
        extra = _added_headers(context)
        if extra:
            status, headers, body, media_type = answer
            answer = status, {**headers, **extra}, body, media_type
        answer = await record(context, answer)
    finally:
        runtime.inflight -= 1
        leave(context.slots)
        if context.clock is not None:
            context.clock.close()
    await send_answer(send, answer, exchange)


def _added_headers(context: Context) -> dict[str, str]:
    """What the gateway adds to an answer: the signature verdict, the rate limits' state, a
    deprecated service's ``Deprecation``/``Sunset``/``Link``."""
    added: dict[str, str] = {}
    if context.signature is not None:
        added[SIGNATURE_HEADER] = context.signature.summary()
    if context.limit_headers:
        added.update(context.limit_headers)
    if context.route is not None:
        added.update(catalogue_of(context.runtime).route_headers.get(context.route.id, {}))
    return added


class Context:
    """What one request's steps share besides the exchange record."""

    __slots__ = (
        "admission",
        "arrived",
        "body",
        "clock",
        "content_type",
        "exchange",
        "limit_headers",
        "persistence",
        "route",
        "runtime",
        "signature",
        "slots",
    )

    def __init__(
        self,
        runtime: Runtime,
        persistence: Persistence,
        exchange: Exchange,
        admission: Admission,
        arrived: float,
    ) -> None:
        self.runtime = runtime
        self.persistence = persistence
        self.exchange = exchange
        self.admission = admission
        self.arrived = arrived
        """``time.monotonic()`` when the pipeline got the request."""
        self.slots: list[asyncio.Semaphore] = []
        """Admission slots held, released when the answer is recorded."""
        self.route: CompiledRoute | None = None
        self.clock: Deadline | None = None
        """The route's deadline, once the route is known (closed with the request)."""
        self.body = b""
        self.content_type = ""
        self.signature: VerificationResult | None = None
        self.limit_headers: dict[str, str] | None = None
        """``RateLimit`` and ``RateLimit-Policy`` of a rate-limited route's answer."""


async def _handle(context: Context, scope: Scope, receive: Receive) -> Answer:
    runtime, exchange = context.runtime, context.exchange
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    caller = await runtime.identity.authenticate(headers, scope)
    if caller is None and not exchange.path.startswith(MESSAGES_PREFIX):
        caller = public_caller(runtime, exchange.method, exchange.path)
    if caller is None:
        raise runtime.identity.unauthenticated(headers)
    client = caller.client
    exchange.client = client.id
    if exchange.path.startswith(MESSAGES_PREFIX):
        return await message_status(context, client, exchange.path.removeprefix(MESSAGES_PREFIX))
    if exchange.path == CATALOGUE_PATH or exchange.path.startswith(CATALOGUE_PATH + "/"):
        return await catalogue(context, client, headers, receive)
    route, params = match(runtime, exchange.method, exchange.path)
    context.route = route
    exchange.route = route.id
    exchange.upstream = route.config.upstream
    exchange.operation = route.config.operation or None
    if not (route.allows(client.id) or route.config.public or await agreed(context, client, route)):
        raise Problem("forbidden", f"client {client.id!r} may not call route {route.id!r}")
    if caller.scopes is not None and not route.scopes <= caller.scopes:
        missing = " ".join(sorted(route.scopes - caller.scopes))
        raise Problem("insufficient_scope", f"the token lacks scope {missing!r} for {route.id!r}")
    if runtime.limits is not None:
        rules, policy = runtime.limits.rules(route.id, client)
        if rules:
            context.limit_headers = await runtime.counters.consume(rules, policy)
    deadline = context.arrived + route.timeout
    context.slots = await context.admission.enter(route, deadline)
    clock = context.clock = Deadline(deadline)
    body = context.body = await read_body(
        receive,
        headers.get("content-length"),
        route.max_body_size,
        clock=clock,
        idle=context.admission.body_timeout,
    )
    exchange.bytes_in = len(body)
    content_type = context.content_type = headers.get("content-type", "")
    with tracing.span("validate", route=route.id):
        data = validate(route, body, content_type)
    if route.signatures is not None:
        await verify_signatures(context, route.signatures, body, content_type)
    if route.config.log_bodies:
        exchange.extra["request_body"] = body[:LOGGED_BODY_LIMIT].decode("utf-8", "replace")
    outbound = GatewayRequest(
        operation=route.config.operation,
        method=exchange.method,
        path=exchange.path,
        body=body,
        content_type=content_type,
        data=data,
        headers=forwarded_headers(headers, exchange, client),
        path_params=params,
        query=scope["query_string"].decode("latin-1"),
        request_id=exchange.request_id,
        client_id=client.id,
        route_id=route.id,
        deadline=deadline,
    )
    key = headers.get(IDEMPOTENCY_HEADER) if exchange.method == "POST" else None
    if key is None:
        return await dispatch(context, route, outbound, clock)
    idempotency = context.persistence.idempotency
    replay = await idempotency.begin(client.id, key, route.id, sha256_hex(body))
    if replay is not None:
        exchange.extra["idempotency"] = "replayed"
        return replay.status, replay.headers, replay.body, replay.media_type
    try:
        answer = await dispatch(context, route, outbound, clock)
    except Problem as problem:
        answer = problem_answer(problem, exchange)
    await idempotency.finish(client.id, key, *answer)
    return answer


async def verify_signatures(
    context: Context, policy: SignaturePolicy, body: bytes, content_type: str
) -> None:
    """Refuse a body whose signatures the route's policy does not accept.

    The full result goes to the message log, a one-line summary to the caller
    (``X-LGSP-Signature``). Forwarded is the body as received, signature
    included; gateway code that reads a document's fields must read
    ``context.signature.signed_content``, what the signature proved.
    """
    from gateway import signatures

    trust = context.runtime.trust
    assert trust is not None, "the config loader requires trust for verifying routes"
    try:
        with tracing.span("verify_signatures", route=context.exchange.route or ""):
            result = await trust.verify(body, content_type, policy)
    except signatures.UnusableInput as exc:
        raise Problem(exc.code, f"cannot verify signatures: {exc}") from None
    metrics.signature_verdict("route", result.verdict)
    context.signature = result
    context.exchange.extra["signature"] = result.verdict
    if not result.accepted:
        raise Problem(
            "signature_invalid",
            f"signature verification: {result.verdict}",
            errors=[
                {
                    "path": "$",
                    "code": r.code,
                    "severity": r.severity,
                    "message": r.message_en,
                    "message_vi": r.message_vi,
                }
                for r in result.reasons
            ],
            extra={"verdict": result.verdict, "signer": result.signer_subject},
        )


async def dispatch(
    context: Context, route: CompiledRoute, outbound: GatewayRequest, clock: Deadline
) -> Answer:
    """Call the upstream now, or queue the request for the delivery worker."""
    exchange = context.exchange
    if route.config.delivery == "sync":
        answer = to_answer(await call_upstream(route, outbound, exchange, clock))
        if route.config.log_bodies:
            logged = answer[2][:LOGGED_BODY_LIMIT].decode("utf-8", "replace")
            exchange.extra["response_body"] = logged
        return answer
    try:
        await context.persistence.queue.enqueue(
            exchange.message_id,
            client=outbound.client_id,
            route=route.id,
            upstream=route.config.upstream,
            request=msgspec.structs.replace(  # its delivery continues this trace
                outbound, headers=tracing.with_trace_context(outbound.headers)
            ),
        )
    except Exception as exc:
        log.error("enqueue_failed", request_id=exchange.request_id, error=type(exc).__name__)
        raise Problem(
            "storage_unavailable", "the request could not be stored; send it again"
        ) from None
    status_url = f"{MESSAGES_PATH}/{exchange.message_id}"
    accepted = {"message_id": exchange.message_id, "state": "queued", "status_url": status_url}
    return 202, {"location": status_url}, msgspec.json.encode(accepted), "application/json"


async def agreed(context: Context, client: Client, route: CompiledRoute) -> bool:
    """Has the owner of the route's catalogue service approved this client (in the database,
    on top of the YAML's ``clients``)?"""
    service = catalogue_of(context.runtime).service_of_route.get(route.id)
    if service is None:
        return False
    grant = await context.persistence.access.grants.grant(client.id, service)
    if grant is not None:
        context.exchange.extra["access_agreement"] = grant.id
    return grant is not None


async def catalogue(
    context: Context, client: Client, headers: dict[str, str], receive: Receive
) -> Answer:
    """``/v1/catalogue…``, served here because the mount shadows fixed routes with parameters."""
    exchange = context.exchange
    exchange.operation = "catalogue"
    return await catalogue_api.serve(
        catalogue_api.CatalogueCall(
            runtime=context.runtime,
            access=context.persistence.access,
            client=client.id,
            method=exchange.method,
            path=exchange.path,
            request_id=exchange.request_id,
            read_body=lambda: _catalogue_body(context, headers, receive),
        )
    )


async def _catalogue_body(context: Context, headers: dict[str, str], receive: Receive) -> bytes:
    """A catalogue request's body, within the gateway's default timeout (it has no route)."""
    clock = Deadline(context.arrived + seconds(context.runtime.loaded.config.limits.timeout))
    try:
        return await read_body(
            receive,
            headers.get("content-length"),
            catalogue_api.MAX_BODY,
            clock=clock,
            idle=context.admission.body_timeout,
        )
    finally:
        clock.close()


async def message_status(context: Context, client: Client, message_id: str) -> Answer:
    """``GET /v1/messages/{id}``: what became of a message; only its sender may ask."""
    if context.exchange.method != "GET":
        raise Problem(
            "method_not_allowed", f"{MESSAGES_PATH}/{{id}} accepts GET", headers={"allow": "GET"}
        )
    view = await context.persistence.queue.get(message_id)
    if view is None or view.pop("client") != client.id:
        raise Problem("not_found", f"no message {message_id} sent by {client.id}")
    return 200, {}, msgspec.json.encode(view), "application/json"


async def record(context: Context, answer: Answer) -> Answer:
    """Put the exchange on record before answering; an unrecorded exchange is not acknowledged."""
    message_log = context.persistence.message_log
    if message_log is None:
        return answer
    exchange, route = context.exchange, context.route
    status, _, body, media_type = answer
    settings = route.config.message_log if route is not None else None
    mask = settings is None or settings.mask
    persistence = context.persistence

    def kept(data: bytes, kind: str) -> bytes | None:
        if settings is None or not settings.bodies:
            return None
        data = mask_body(data, kind, persistence.personal_fields) if mask else data
        return data[: persistence.max_logged_body]

    async_accepted = status == 202 and route is not None and route.config.delivery == "async"
    entry = AuditRecord.of_exchange(
        exchange,
        kind="accepted" if async_accepted else "exchange",
        request=context.body,
        response=body,
        status=status,
        path=mask_id_numbers(exchange.path) if mask else exchange.path,
        signature=None if context.signature is None else context.signature.record(),
        request_body=kept(context.body, context.content_type),
        response_body=kept(body, media_type),
    )
    try:
        await message_log.append(entry)
    except LogUnavailable:
        problem = Problem("log_unavailable", "the message log cannot be written; try again later")
        return problem_answer(problem, exchange)
    return answer


PUBLIC_CALLER = Caller(Client(id="public", name="caller without an API key"))


def public_caller(runtime: Runtime, method: str, path: str) -> Caller | None:
    """The stand-in caller of a request without a valid key, if it is for a public route."""
    try:
        route, _ = runtime.router.lookup(method, path)
    except (NoRoute, MethodNotAllowed):
        return None
    return PUBLIC_CALLER if route.config.public else None


def match(runtime: Runtime, method: str, path: str) -> tuple[CompiledRoute, dict[str, str]]:
    try:
        return runtime.router.lookup(method, path)
    except NoRoute:
        raise Problem("route_not_found", f"no route serves {path}") from None
    except MethodNotAllowed as exc:
        allowed = ", ".join(exc.allowed)
        raise Problem(
            "method_not_allowed", f"{path} accepts {allowed}", headers={"allow": allowed}
        ) from None


async def read_body(
    receive: Receive, declared: str | None, limit: int, *, clock: Deadline, idle: float
) -> bytes:
    """The whole body, refused as soon as it is known to pass ``limit``.

    It must arrive by the request's deadline (``clock``), with no pause longer
    than ``idle``; else 408 and the connection is closed (a slow sender holds a
    slot and a connection, and is never waited for past its route's timeout).
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        with clock.guard(idle):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = cast(bytes, message.get("body", b""))
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
                clock.extend(idle)
    except TimeoutError:
        late = asyncio.get_running_loop().time() >= clock.end
        detail = (
            "the body did not arrive within the route's timeout"
            if late
            else (f"the body stopped arriving for {idle:g}s")
        )
        raise Problem("request_timeout", detail, headers={"connection": "close"}) from None


def _too_large(limit: int) -> Problem:
    return Problem("payload_too_large", f"body exceeds this route's limit of {limit} bytes")


def validate(route: CompiledRoute, body: bytes, content_type: str) -> object:
    schema = route.schema
    if schema is None:
        return None
    media_type = bodies.media_type(content_type)
    # A kind whose documents also come in a JSON form (edXML's) has validate_json. Not an
    # isinstance of a runtime-checkable Protocol: that costs ~30 us a request.
    validate_json: Callable[[bytes], object] | None = getattr(schema, "validate_json", None)
    json_form = validate_json is not None and bodies.is_json(media_type)
    json = schema.media_type == _JSON_TYPES[0]
    accepted, suffix = (_JSON_TYPES, "+json") if json else (_XML_TYPES, "+xml")
    if media_type not in accepted and not media_type.endswith(suffix) and not json_form:
        raise Problem(
            "unsupported_media_type",
            f"this route takes {' or '.join(accepted)}, not {media_type or 'an untyped body'}",
        )
    try:
        if json_form and validate_json is not None:
            return validate_json(body)
        return schema.validate(body)
    except BodyInvalid as exc:
        raise body_problem(exc) from None


def forwarded_headers(
    headers: dict[str, str], exchange: Exchange, client: Client
) -> dict[str, str]:
    forwarded = {k: v for k, v in headers.items() if k not in _NOT_FORWARDED}
    forwarded[REQUEST_ID] = exchange.request_id
    forwarded[CLIENT_HEADER] = client.id
    return forwarded


async def call_upstream(
    route: CompiledRoute, outbound: GatewayRequest, exchange: Exchange, clock: Deadline
) -> GatewayResponse:
    """Call the adapter within the route's deadline, retrying what the policy allows."""
    policy = route.retry
    started = time.perf_counter()
    exchange.upstream_out_at = time.time()
    try:
        for attempt in range(1, policy.attempts + 1):
            exchange.attempts = attempt
            try:
                answer = await _attempt(route, outbound, clock)
                if answer.status < 500:
                    return answer
                raise UpstreamError(
                    f"upstream answered HTTP {answer.status}", upstream_status=answer.status
                )
            except UpstreamError as failure:
                delay = min(policy.max_backoff, policy.backoff * 2 ** (attempt - 1))
                delay *= random.uniform(0.5, 1.0)  # jitter: retries of many callers spread out
                if (
                    attempt == policy.attempts
                    or not route.idempotent
                    or failure.retry_condition not in policy.on
                    or outbound.remaining() <= delay
                ):
                    raise _upstream_problem(failure, exchange) from None
            except RequestRejected as rejected:
                raise Problem.of(rejected) from None
            metrics.upstream_retry(route.config.upstream, route.config.operation)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")
    finally:
        exchange.upstream_in_at = time.time()
        exchange.upstream_ms = round((time.perf_counter() - started) * 1000, 3)


async def _attempt(
    route: CompiledRoute, outbound: GatewayRequest, clock: Deadline
) -> GatewayResponse:
    budget = outbound.remaining()
    if budget <= 0:
        raise UpstreamTimeout("no time left before the route's deadline")
    attempt_timeout = None
    if route.retry.attempt_timeout is not None and route.retry.attempt_timeout < budget:
        budget = attempt_timeout = route.retry.attempt_timeout  # the adapter sees it
        outbound = msgspec.structs.replace(outbound, deadline=time.monotonic() + budget)
    breaker = route.breaker
    breaker.enter()  # upstream_circuit_open or overloaded, at once
    upstream, operation = route.config.upstream, route.config.operation
    started, outcome, failed = time.perf_counter(), "error", False
    try:
        with tracing.upstream_span(upstream, operation), clock.guard(attempt_timeout):
            answer = await route.adapter.handle(outbound)
        outcome = f"{answer.status // 100}xx"  # an answer; errors are named by their code
        failed = answer.status >= 500
        return answer
    except TimeoutError:
        outcome, failed = "upstream_timeout", True
        raise UpstreamTimeout(f"no answer within {budget:.3g}s") from None
    except (UpstreamError, RequestRejected) as error:
        outcome = error.code
        failed = isinstance(error, UpstreamError) and error.retry_condition is not None
        raise
    finally:
        breaker.leave(failed)  # timeouts, connection errors and 5xx count against it
        metrics.upstream_call(upstream, operation, outcome, time.perf_counter() - started)


def _upstream_problem(error: UpstreamError, exchange: Exchange) -> Problem:
    """The caller reads the upstream's words cut and cleaned; the log line has them whole."""
    extra = {} if error.upstream_status is None else {"upstream_status": error.upstream_status}
    problem = Problem.of(error, extra=extra)
    problem.detail = public_detail(error.detail)
    if problem.detail != error.detail:
        exchange.extra["upstream_detail"] = error.detail  # ID numbers masked by the log
    return problem


def to_answer(answer: GatewayResponse) -> Answer:
    media_type = bodies.media_type(answer.content_type)
    if media_type in _JSON_TYPES and answer.body:
        try:
            msgspec.json.decode(answer.body)
        except msgspec.DecodeError:
            raise Problem(
                "upstream_error", "upstream returned malformed JSON", source="upstream"
            ) from None
    headers = answer.headers
    if answer.status >= 400:
        headers = {**headers, ERROR_SOURCE_HEADER: "upstream"}
    return answer.status, headers, answer.body, answer.content_type


def problem_answer(problem: Problem, exchange: Exchange) -> Answer:
    exchange.error_code = problem.code
    exchange.error_source = problem.source
    body = problem.body(exchange.request_id)
    return problem.status, problem.response_headers(), body, PROBLEM_MEDIA_TYPE


async def send_answer(send: Send, answer: Answer, exchange: Exchange) -> None:
    """Send ``answer`` with the exchange's own headers (request id, message id); a HEAD's
    without the body."""
    status, headers, body, media_type = answer
    raw = [
        (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items() if k != REQUEST_ID
    ]
    raw.append((MESSAGE_ID_HEADER, exchange.message_id.encode()))
    raw.append((b"content-type", media_type.encode("latin-1")))
    raw.append((b"content-length", str(len(body)).encode()))
    raw += exchange.echoed
    exchange.status = status
    exchange.bytes_out += len(body)
    start: Message = {"type": "http.response.start", "status": status, "headers": raw}
    await send(start)
    sent = b"" if exchange.head else body
    await send({"type": "http.response.body", "body": sent, "more_body": False})
