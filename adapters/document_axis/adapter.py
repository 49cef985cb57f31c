"""``type: document_axis``: the national document-exchange axis (VDXP) behind simple routes.

Route operations:

- ``sendEdoc``: the body is an edXML document or its JSON form; sent for the
  From agency to every To agency. Answer: ``{"docId", "messageType", "from",
  "to", "hash_file", "size"}``.
- ``sendStatus``: an edXML status message or its JSON form (a StatusHeader;
  Timestamp optional), sent to the agency whose document it answers.
- ``getReceivedEdocList``: ``{"items": [...]}``, the documents and statuses
  waiting for the agency named by the ``organ_id`` path parameter (or query
  parameter), as the axis lists them (``docId``, ``messageType``, ``from``,
  ``to``, ``status``, ``created_time``...); ``limit`` query parameter,
  default ``page_size``.
- ``getSentEdocList``: ``{"items": [...]}``, one per document the agency sent,
  with ``to`` (every receiver) and ``statuses`` (receiver -> its state).
- ``getEdoc``: the edXML of ``doc_id`` (path or query parameter) for ``organ_id``.
- ``updateStatus``: body ``{"status": "processing"|"done"|"fail", "reason": "..."}``.
- ``listAgencies``: ``{"items": [...]}``, the province's directory (``organId``, ``name``,
  ``level``, ``parent``, ``receives``: ``system`` or ``mailbox``).
- ``getDocumentReceivers``: ``{"docId", "from", "receivers": [...]}`` for ``doc_id``: each
  receiver's leg (``local`` or ``national``), delivery state and last answered status.

Documents and statuses between agencies of the province that have a document
system never reach the national axis (``local``): the sender gets one id at
once, local legs go through the delivery queue, the rest in one ``sendEdoc``.

The axis account's mailbox holds every agency of the province: lists are
filtered here by ``to`` (or ``from``). Only the agencies in ``agencies`` may
send or read through the gateway. With ``agencies`` set, the server also
polls the mailbox for them (``poller``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs

import msgspec

from adapters import bodies
from adapters.base import (
    AdapterContext,
    AdapterHost,
    GatewayRequest,
    GatewayResponse,
    UpstreamHealth,
)
from adapters.document_axis.client import AxisClient, NotFound, Payload, receivers
from adapters.document_axis.errors import AgencyNotServed, DocumentNotFound
from adapters.document_axis.local import Leg, LocalExchange, Sent, now
from adapters.document_axis.messages import (
    Addressing,
    outbound_document,
    outbound_status,
    temp_spool,
)
from adapters.document_axis.poller import Poller
from adapters.document_axis.settings import DOCUMENT, STATUS, DocumentAxisSettings
from adapters.errors import RequestRejected, UpstreamError

MAX_LIMIT = 1000


class StatusUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    status: Literal["processing", "done", "fail"]
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class DocumentAxisAdapter:
    Settings = DocumentAxisSettings

    def __init__(self, name: str, settings: DocumentAxisSettings, context: AdapterContext) -> None:
        self.name = name
        self.settings = settings
        self.axis = AxisClient(name, settings, context.config_dir)
        self.local = LocalExchange(name, settings)
        self._host: AdapterHost | None = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self, host: AdapterHost) -> None:
        """Poll the agencies' mailboxes in the background until ``aclose``."""
        self._host = host
        if self.settings.agencies and self._poller is None:
            poller = Poller(self.name, self.settings, self.axis, host)
            self._poller = host.run_once(f"{self.name}-poller", poller.run)  # one per deployment

    async def handle(self, request: GatewayRequest) -> GatewayResponse:
        operation = request.operation.strip()
        if operation == "sendEdoc":
            return await self._send(
                DOCUMENT, *outbound_document(request.body, request.content_type), request
            )
        if operation == "sendStatus":
            return await self._send(
                STATUS, *outbound_status(request.body, request.content_type), request
            )
        if operation == "listAgencies":
            return _json({"items": self._directory()})
        if operation == "getDocumentReceivers":
            return await self._receivers(_param(request, "doc_id"))
        paths = self.settings.paths
        organ_id = self._agency(_param(request, "organ_id"), "organ_id", request.client_id)
        if operation == "getReceivedEdocList":
            limit = _limit(request, self.settings.page_size)
            items = [
                {**item, "messageType": kind}
                for kind in (DOCUMENT, STATUS)
                for item in await self.axis.list_edocs(
                    paths.get_received_edoc_list, kind, request.remaining()
                )
                if organ_id in receivers(item)
            ]
            return _json({"items": items[:limit]})
        if operation == "getSentEdocList":
            limit = _limit(request, self.settings.page_size)
            sent = [
                (kind, item)
                for kind in (DOCUMENT, STATUS)
                for item in await self.axis.list_edocs(
                    paths.get_sent_edoc_list, kind, request.remaining()
                )
            ]
            return _json({"items": _by_document(sent, organ_id)[:limit]})
        doc_id = _param(request, "doc_id")
        try:
            if operation == "getEdoc":
                return await self._fetch(doc_id, request)
            if operation == "updateStatus":
                update = _status_update(request.body)
                await self.axis.update_status(
                    doc_id, update.status, update.reason, request.remaining()
                )
                return _json({"docId": doc_id, "status": update.status})
        except NotFound as missing:
            return GatewayResponse(
                status=404,
                body=msgspec.json.encode({"error": "not_found", "detail": missing.detail}),
            )
        raise UpstreamError(
            f"{self.name} has no operation {operation!r} (see the route's operation)"
        )

    async def _send(
        self, message_type: str, addressing: Addressing, payload: Payload, request: GatewayRequest
    ) -> GatewayResponse:
        try:
            self._agency(addressing.sender, "From/OrganId", request.client_id)
            doc_id = await self._exchange(message_type, addressing, payload, request)
        finally:
            if not isinstance(payload.source, bytes):
                payload.source.close()
        return _json(
            {
                "docId": doc_id,
                "messageType": message_type,
                "from": addressing.sender,
                "to": addressing.receivers,
                "hash_file": payload.sha256,
                "size": payload.size,
            },
            status=201,
        )

    async def _exchange(
        self, kind: str, addressing: Addressing, payload: Payload, request: GatewayRequest
    ) -> str:
        """Send to the national axis only what must leave the province; the document's id."""
        host = self._host
        if host is None:  # not started (a command, not the server): all goes to the axis
            return await self.axis.send(addressing.sender, kind, payload, request.remaining())
        local = self.local.local_receivers(addressing.receivers)
        national = [r for r in addressing.receivers if r not in local]
        self.local.check_systems(host, local)
        doc_id = (
            await self.axis.send(addressing.sender, kind, payload, request.remaining())
            if national
            else self.local.new_id()
        )
        sent_at = now()
        legs = [Leg(organ_id=r, via="national", sent_at=sent_at) for r in national]
        if local:
            body = _read(payload)
            legs = await self.local.deliver(host, doc_id, kind, addressing.sender, local, body)
            legs += [Leg(organ_id=r, via="national", sent_at=sent_at) for r in national]
        if kind == DOCUMENT:
            sent = Sent(doc_id=doc_id, sender=addressing.sender, legs=legs)
            await self.local.record(host, sent, addressing.document_id)
        else:
            await self.local.answered(
                host, addressing.document_id, addressing.sender, addressing.status_code
            )
        return doc_id

    async def _receivers(self, doc_id: str) -> GatewayResponse:
        sent = None if self._host is None else await self.local.sent(self._host, doc_id)
        if self._host is None or sent is None:
            raise DocumentNotFound(f"no document {doc_id} was sent through this gateway")
        receivers = await self.local.receivers(self._host, sent)
        return _json({"docId": doc_id, "from": sent.sender, "receivers": receivers})

    def _directory(self) -> list[dict[str, Any]]:
        return [
            {
                "organId": organ_id,
                "name": agency.name,
                "level": agency.level,
                "parent": agency.parent,
                "receives": "system" if agency.upstream else "mailbox",
            }
            for organ_id, agency in self.settings.directory().items()
        ]

    async def _fetch(self, doc_id: str, request: GatewayRequest) -> GatewayResponse:
        with temp_spool() as spool:
            size = await self.axis.fetch(doc_id, spool, request.remaining())
            spool.seek(0)
            body = spool.read(size)
        return GatewayResponse(
            body=body, content_type="application/xml", headers={"x-lgsp-edoc-id": doc_id}
        )

    def _agency(self, organ_id: str, path: str, client_id: str) -> str:
        """``organ_id`` if it is an agency of the province that ``client_id`` may act for."""
        if self.settings.agencies and organ_id not in self.settings.agencies:
            raise AgencyNotServed(
                f"agency {organ_id} is not served by this LGSP",
                errors=[{"path": path, "message": "not an agency of this province"}],
            )
        allowed = self.settings.directory()[organ_id].clients if self.settings.agencies else []
        if allowed and client_id not in allowed:
            raise AgencyNotServed(
                f"this client may not act for agency {organ_id}",
                errors=[{"path": path, "message": "another client's agency"}],
            )
        return organ_id

    async def check(self) -> UpstreamHealth:
        return self.axis.health.state

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.axis.aclose()


def _param(request: GatewayRequest, name: str) -> str:
    """A path parameter, or else a query parameter; required."""
    value = request.path_params.get(name) or next(iter(parse_qs(request.query).get(name, [])), "")
    if not value:
        raise RequestRejected(
            f"{name} is required (path or query parameter)",
            errors=[{"path": name, "message": "required"}],
        )
    return value


def _limit(request: GatewayRequest, default: int) -> int:
    raw = next(iter(parse_qs(request.query).get("limit", [])), "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise RequestRejected(
            "limit must be a whole number from 1 to 1000",
            errors=[{"path": "limit", "message": f"not a whole number from 1 to {MAX_LIMIT}"}],
        )
    return int(raw)


def _status_update(body: bytes) -> StatusUpdate:
    return bodies.convert(bodies.parse_json(body), StatusUpdate)


def _by_document(sent: list[tuple[str, dict[str, Any]]], organ_id: str) -> list[dict[str, Any]]:
    """The axis's sent list (an item per receiver) as one item per document ``organ_id`` sent.

    Read tolerantly: besides ``docId``/``from``/``to``/``status``, the names
    SDK 2.0.1's ``StatusResult`` reads (``senderDocId``, ``fromCode``,
    ``toCode``, ``receiveStatus``).
    """
    documents: dict[str, dict[str, Any]] = {}
    for kind, item in sent:
        sender = str(item.get("from") or item.get("fromCode") or "")
        doc_id = str(item.get("docId") or item.get("senderDocId") or "")
        if sender != organ_id or not doc_id:
            continue
        document = documents.setdefault(
            doc_id,
            {
                "docId": doc_id,
                "messageType": kind,
                "from": sender,
                "created_time": item.get("created_time"),
                "to": [],
                "statuses": {},
            },
        )
        status = str(item.get("status") or item.get("receiveStatus") or "")
        for receiver in receivers(item):
            if receiver not in document["statuses"]:
                document["to"].append(receiver)
            document["statuses"][receiver] = status
    return list(documents.values())


def _read(payload: Payload) -> bytes:
    """The whole message, for the delivery queue (which keeps bodies whole)."""
    if isinstance(payload.source, bytes):
        return payload.source
    payload.source.seek(0)
    return payload.source.read()


def _json(data: Any, status: int = 200) -> GatewayResponse:
    return GatewayResponse(status=status, body=msgspec.json.encode(data))
