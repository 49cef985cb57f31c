"""The adapter contract: the one seam between the gateway core and upstreams.

The core never knows which protocol an upstream speaks. It builds a
``GatewayRequest``, awaits ``adapter.handle()`` under the route's deadline and
retry policy, and maps whatever comes back. Adapters raise the typed errors
of ``adapters.errors`` so that the caller gets a stable error code whatever
the protocol.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import msgspec


class ConfiguredNames(msgspec.Struct, frozen=True, kw_only=True):
    """What the rest of the configuration names, for settings that refer to it."""

    upstreams: Collection[str]
    clients: Collection[str]


class AdapterSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of every adapter's settings: the keys of an ``upstreams`` entry besides ``type``."""

    description: str = ""

    def issues(self, names: ConfiguredNames) -> list[tuple[tuple[str | int, ...], str]]:
        """(key path under the entry, message) for what no type check sees, e.g. a name of
        another upstream or a client not configured; ``config check`` reports each at its line."""
        return []


class GatewayRequest(msgspec.Struct, kw_only=True):
    """What an adapter is asked to do, independent of the inbound HTTP request."""

    operation: str
    """Route-defined operation: an upstream path, a SOAP operation name, a mock operation."""
    method: str
    path: str
    body: bytes = b""
    content_type: str = ""
    data: Any = None
    """The body decoded as JSON builtins when the route validated it as JSON, else None."""
    headers: dict[str, str] = {}
    """Inbound headers worth forwarding (lower-case names; credentials already removed)."""
    path_params: dict[str, str] = {}
    query: str = ""
    request_id: str = ""
    client_id: str = ""
    route_id: str = ""
    deadline: float = 0.0
    """``time.monotonic()`` value after which the result is useless to the caller."""

    def remaining(self) -> float:
        """Seconds left before the deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())


class GatewayResponse(msgspec.Struct, kw_only=True):
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = {}


class UpstreamHealth(msgspec.Struct, kw_only=True):
    state: Literal["up", "down", "unknown"]
    detail: str = ""


@runtime_checkable
class Adapter(Protocol):
    """One configured upstream. Built once per config load, shared by all requests."""

    Settings: ClassVar[type[AdapterSettings]]

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        """Perform one call. Raise ``UpstreamError`` for anything the caller must not see raw."""
        ...

    async def check(self) -> UpstreamHealth:
        """Cheap health probe used by ``/health/ready``; must not raise."""
        ...

    async def aclose(self) -> None:
        """Release pooled connections; called once the upstream is no longer configured."""
        ...


class AdapterState(Protocol):
    """A small durable memory of one upstream (e.g. the last status synced per dossier).

    Kept in the gateway's store, so replicas sharing PostgreSQL share it.
    Keys and values are short strings; each adapter sees only its own keys.
    """

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, value: str) -> None: ...

    async def swap(self, key: str, expected: str | None, value: str) -> bool:
        """Put ``value`` only if the key still holds ``expected`` (None: absent); False if
        another request or replica changed it first: read again and retry."""
        ...

    async def purge(self, prefix: str, before: float) -> int:
        """Forget the keys starting with ``prefix`` last put before ``before`` (Unix time)."""
        ...


class InboundMessage(msgspec.Struct, kw_only=True):
    """Something an adapter fetched from its upstream for another configured upstream.

    The document axis poller hands each received document to ``AdapterHost.accept``,
    which stores it for delivery to ``upstream`` (an agency system) exactly as an
    async route would, and records it in the message log.
    """

    key: str
    """Dedupe key, e.g. ``"edoc:<docId>"``: a key already accepted is not queued again."""
    upstream: str
    """The configured upstream that gets it."""
    source: str
    """Who it comes from, for the record (stands in for the client id), e.g. the adapter name."""
    request: GatewayRequest
    """What to send there: operation, method, path, body, headers, as for a route."""
    verify_signatures: Literal["off", "if_present", "required"] = "off"
    """Check the body's signatures (edXML, PDF) against the gateway's trust store first, as a
    route's ``verify_signatures`` does; the result goes on record with the message."""
    warnings: list[dict[str, str]] = []
    """What is wrong with the message but did not stop it (e.g. edXML rules it breaks, as
    ``{path, rule, message}``): kept on record with it (its ``signature`` evidence, key
    ``warnings``)."""


class InboundRefused(Exception):
    """``AdapterHost.accept`` would not take the message (e.g. its signature does not verify).

    Nothing was stored; ``detail`` says why, fit to send back to the sender.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class MailboxItem(msgspec.Struct, kw_only=True):
    """One message held in an agency's mailbox here, as ``AdapterMailboxes`` lists it."""

    box: str
    item: str
    message_id: str
    """Its id on record in the message log (the same as ``AdapterHost.accept`` would give)."""
    headers: dict[str, str]
    """The headers of the message held (its ``InboundMessage.request.headers``)."""
    state: Literal["initial", "processing", "done", "fail"]
    """``initial`` until its owner settles it (the national axis's words)."""
    reason: str = ""
    created_at: float
    updated_at: float


class AdapterMailboxes(Protocol):
    """Mailboxes kept in the gateway's store for those who pull (``AdapterHost.hold``).

    Durable and shared by replicas, like ``AdapterState``; each adapter sees only its own.
    """

    async def items(self, box: str, limit: int) -> list[MailboxItem]:
        """The items of ``box`` not yet ``done`` or ``fail``, oldest first."""
        ...

    async def get(self, box: str, item: str) -> MailboxItem | None: ...

    async def body(self, box: str, item: str) -> bytes | None:
        """The message held, as it was given to ``hold``."""
        ...

    async def settle(
        self, box: str, item: str, state: Literal["processing", "done", "fail"], reason: str
    ) -> MailboxItem | None:
        """Set an item's state (its owner read it, or refused it); None if there is none."""
        ...

    async def purge(self, before: float) -> int:
        """Delete the ``done`` and ``fail`` items last changed before ``before``."""
        ...


class AdapterHost(Protocol):
    """What the running gateway offers an adapter that needs more than ``handle``."""

    name: str
    """The upstream's configured name."""
    state: AdapterState
    mailboxes: AdapterMailboxes

    async def accept(self, message: InboundMessage) -> tuple[str, bool]:
        """Store ``message`` durably for delivery; (message id, False if the key was seen).

        ``InboundRefused`` if it cannot be taken (its signatures, when asked to check them).
        """
        ...

    async def hold(self, box: str, item: str, message: InboundMessage) -> tuple[str, bool]:
        """Keep ``message`` in mailbox ``box`` as ``item`` until its owner pulls it (instead of
        delivering it to ``message.upstream``): checked, durable and on record as ``accept``.
        """
        ...

    def has_upstream(self, name: str) -> bool:
        """Whether ``name`` is a configured upstream now (a mapping may point at a removed one)."""
        ...

    async def delivery(self, message_id: str) -> dict[str, Any] | None:
        """What became of a message ``accept`` took: the delivery queue's view (``state``,
        ``attempts``, ``updated_at``...), None if unknown (purged after its retention)."""
        ...


@runtime_checkable
class HostedAdapter(Adapter, Protocol):
    """An adapter with background work or state: started once the gateway can host it.

    ``start`` is called after the adapter is built and before it serves a
    request in the server (never by ``config check`` or other commands); its
    background tasks end in ``aclose``. An adapter kept across a reload is not
    started twice.
    """

    async def start(self, host: AdapterHost) -> None: ...


class AdapterFactory(Protocol):
    """The class registered under an entry point: ``Factory(name, settings, context)``."""

    Settings: ClassVar[type[AdapterSettings]]

    def __call__(self, name: str, settings: Any, context: AdapterContext) -> Adapter: ...


class AdapterContext(msgspec.Struct, frozen=True):
    """What an adapter may need from its surroundings while it is built."""

    config_dir: str
    """Directory of the main config file: relative file settings resolve against it."""
    schemas_dir: str
    """The ``schemas/`` package directory (WSDL, XSD shipped with the gateway)."""
