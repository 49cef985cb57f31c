"""``type: document_axis``: the national document-exchange axis (VDXP) behind simple routes.

Route operations:

- ``sendEdoc``: the body is an edXML document or its JSON form; sent for the
  From agency to every To agency. Answer: ``{"docId", "messageType", "from",
  "to", "hash_file", "size"}``.
- ``sendStatus``: an edXML status message or its JSON form (a StatusHeader;
  Timestamp optional), sent to the agency whose document it answers.
- ``getReceivedEdocList``: ``{"items": [...]}``, the documents and statuses
  waiting for the agency named by the ``organ_id`` path parameter (or query
  parameter): those in its mailbox here first (``"via": "local"``), then those
  the axis lists (``docId``, ``messageType``, ``from``, ``to``, ``status``,
  ``created_time``...); ``limit`` query parameter, default ``page_size``. For an
  agency that pulls, an axis that fails leaves the local ones, with ``national``: the
  error's code.
- ``getSentEdocList``: ``{"items": [...]}``, one per document the agency sent,
  with ``to`` (every receiver) and ``statuses`` (receiver -> its state).
- ``getEdoc``: the edXML of ``doc_id`` (path or query parameter) for ``organ_id``, from its
  mailbox here or the axis.
- ``updateStatus``: body ``{"status": "processing"|"done"|"fail", "reason": "..."}``; for a
  document in a mailbox here, ``done``/``fail`` also answers its sender (status 03/02, or
  15/16 for a recall, update or replace).
- ``listAgencies``: ``{"items": [...]}``, the province's directory (``organId``, ``name``,
  ``level``, ``parent``, ``receives``: ``system`` or ``mailbox``).
- ``getDocumentReceivers``: ``{"docId", "from", "receivers": [...]}`` for ``doc_id``: each
  receiver's leg (``local``, ``mailbox`` or ``national``), delivery state and last answered
  status; a recall, update or replace also ``business`` and ``amends`` (the original's
  docId), an original its ``amendments``.

Documents and statuses between agencies of the province never reach the
national axis (``local``): the sender gets one id at once, legs to a document
system go through the delivery queue, legs to an agency without one into its
mailbox here; the rest in one ``sendEdoc``.

The axis account's mailbox holds every agency of the province: lists are
filtered here by ``to`` (or ``from``). Only the agencies in ``agencies`` may
send or read through the gateway. With ``agencies`` set, the server also
polls the mailbox for them (``poller``) and purges old local records
(``retention``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import datetime
from typing import Annotated, Any, Literal, cast
from urllib.parse import parse_qs

import msgspec

import schemas.edxml as edxml
from adapters import bodies
from adapters.base import (
    AdapterContext,
    AdapterHost,
    GatewayRequest,
    GatewayResponse,
    MailboxItem,
    UpstreamHealth,
)
from adapters.document_axis.client import AxisClient, NotFound, Payload, receivers
from adapters.document_axis.errors import AgencyNotServed, DocumentNotFound, NotTheSender
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
from adapters.logs import get_logger
from adapters.units import seconds
from schemas.edxml.codes import StatusCode
from schemas.edxml.formats import VIETNAM

MAX_LIMIT = 1000
PURGE_INTERVAL = 3600.0
"""Seconds between two purges of old records (sooner if ``retention`` is shorter)."""
BUSINESS = {0: "new", 1: "recall", 2: "update", 3: "replace"}
"""BussinessDocType, as ``getDocumentReceivers`` names it."""
MESSAGE_TYPE, FROM = "x-lgsp-message-type", "x-lgsp-from"
"""Headers of a leg's message (``leg_message``) read back from a mailbox."""

log = get_logger(__name__)


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
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, host: AdapterHost) -> None:
        """Poll the agencies' mailboxes and purge old records in the background until
        ``aclose``."""
        self._host = host
        if self.settings.agencies and not self._tasks:
            poller = Poller(self.name, self.settings, self.axis, host)
            self._tasks = [  # each once per deployment, however many workers and replicas
                host.run_once(f"{self.name}-poller", poller.run),
                host.run_once(f"{self.name}-retention", lambda: self._housekeep(host)),
            ]

    async def _housekeep(self, host: AdapterHost) -> None:
        """Every ``retention`` (at most hourly), forget what is older than it."""
        retention = seconds(self.settings.retention)
        while True:
            try:
                purged = await self.local.purge(host, time.time() - retention)
                if purged:
                    log.info("local_axis_purged", upstream=self.name, records=purged)
            except Exception as exc:  # the database is down: the next round tries again
                log.warning("local_axis_purge_failed", upstream=self.name, error=type(exc).__name__)
            await asyncio.sleep(min(retention, PURGE_INTERVAL))

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
            held = await self._mailbox(organ_id, limit)
            try:
                items = [
                    {**item, "messageType": kind}
                    for kind in (DOCUMENT, STATUS)
                    for item in await self.axis.list_edocs(
                        paths.get_received_edoc_list, kind, request.remaining()
                    )
                    if organ_id in receivers(item) and str(item.get("docId")) not in held
                ]
            except UpstreamError as error:
                agency = self.settings.directory().get(organ_id)
                if agency is None or agency.upstream or self._host is None:
                    raise
                # The province's own exchange does not wait for the national axis.
                log.warning("axis_mailbox_unavailable", upstream=self.name, error=error.code)
                return _json({"items": list(held.values()), "national": error.code})
            return _json({"items": [*held.values(), *items][:limit]})
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
        held_item = None if self._host is None else await self._host.mailboxes.get(organ_id, doc_id)
        if held_item is not None and operation in ("getEdoc", "updateStatus"):
            return await self._held(operation, held_item, request)
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

    async def _mailbox(self, organ_id: str, limit: int) -> dict[str, dict[str, Any]]:
        """What the agency's mailbox here holds (docId -> list item, as the axis lists one)."""
        if self._host is None:
            return {}
        return {
            held.item: {
                "docId": held.item,
                "messageType": held.headers.get(MESSAGE_TYPE, DOCUMENT),
                "created_time": _axis_time(held.created_at),
                "updated_time": _axis_time(held.updated_at),
                "from": held.headers.get(FROM, ""),
                "to": organ_id,
                "status": held.state,
                "status_desc": held.reason,
                "via": "local",
            }
            for held in await self._host.mailboxes.items(organ_id, limit)
        }

    async def _held(
        self, operation: str, held: MailboxItem, request: GatewayRequest
    ) -> GatewayResponse:
        """``getEdoc`` and ``updateStatus`` of an item of a mailbox here.

        Settling a document (``done``, ``fail``) also answers its sender, as the agency's
        status message would: received (03) or refused (02), for a recall, update or
        replace accepted (15) or refused (16).
        """
        host = cast(AdapterHost, self._host)
        body = await host.mailboxes.body(held.box, held.item)
        if body is None:  # purged between the two reads
            raise DocumentNotFound(f"no document {held.item} in the mailbox of {held.box}")
        if operation == "getEdoc":
            return GatewayResponse(
                body=body, content_type="application/xml", headers={"x-lgsp-edoc-id": held.item}
            )
        update = _status_update(request.body)
        kind = held.headers.get(MESSAGE_TYPE, DOCUMENT)
        if kind == DOCUMENT and update.status != "processing" and held.state != update.status:
            # The answer first: if it fails, the item is not settled and the agency tries again.
            addressing, payload = self._answer(held.box, body, update)
            await self._exchange(STATUS, addressing, payload, request)
            await self._settle_national_copy(host, held, update, request)
        settled = await host.mailboxes.settle(held.box, held.item, update.status, update.reason)
        if settled is None:
            raise DocumentNotFound(f"no document {held.item} in the mailbox of {held.box}")
        await self.local.keep(host, held.item)  # noted of the answer before the item settled
        return _json({"docId": held.item, "status": update.status})

    async def _settle_national_copy(
        self, host: AdapterHost, held: MailboxItem, update: StatusUpdate, request: GatewayRequest
    ) -> None:
        """A split document is listed on the axis for the local receivers too: settle it
        there as well, so that it does not wait there forever (best effort)."""
        sent = await self.local.sent(host, held.item)
        if sent is None or all(leg.via != "national" for leg in sent.legs):
            return
        try:
            await self.axis.update_status(
                held.item, update.status, update.reason, request.remaining()
            )
        except (UpstreamError, NotFound) as error:
            log.warning("axis_copy_not_settled", upstream=self.name, error=type(error).__name__)

    def _answer(
        self, organ_id: str, body: bytes, update: StatusUpdate
    ) -> tuple[Addressing, Payload]:
        """The status message ``organ_id`` answers a document held for it with."""
        name = self.settings.directory()[organ_id].name or organ_id
        with edxml.parse(body) as original:
            changed = bool(original.bussiness and original.bussiness.BussinessDocType)
            code = {
                (False, "done"): StatusCode.RECEIVED,
                (False, "fail"): StatusCode.REFUSED,
                (True, "done"): StatusCode.TAKE_BACK_ACCEPTED,
                (True, "fail"): StatusCode.TAKE_BACK_REFUSED,
            }[changed, update.status]
            header = edxml.status_reply(
                original,
                code,
                sender=edxml.Organization(OrganId=organ_id, OrganName=name),
                description=update.reason or None,
            )
        addressing = Addressing(
            organ_id,
            [header.ResponseFor.OrganId],
            document_id=header.ResponseFor.DocumentId or "",
            status_code=header.StatusCode,
        )
        return addressing, Payload.of_bytes(edxml.build_status(header))

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
        original = None
        if kind == DOCUMENT and addressing.business:
            original = await self.local.original(host, addressing.original)
            if original is not None and original.sender != addressing.sender:
                raise NotTheSender(
                    f"document {addressing.original} was sent by {original.sender}",
                    errors=[{"path": "From/OrganId", "message": "not the sender of the original"}],
                )
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
            sent = Sent(
                doc_id=doc_id,
                sender=addressing.sender,
                legs=legs,
                document_id=addressing.document_id,
                business=addressing.business,
            )
            await self.local.record(host, sent, original)
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
        answer: dict[str, Any] = {"docId": doc_id, "from": sent.sender, "receivers": receivers}
        if sent.business:
            answer |= {"business": BUSINESS[sent.business], "amends": sent.amends or None}
        if sent.amendments:
            answer["amendments"] = [
                {"docId": a.doc_id, "business": BUSINESS[a.business], "sentAt": a.sent_at}
                for a in sent.amendments
            ]
        return _json(answer)

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
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
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


def _axis_time(at: float) -> str:
    """A time as the axis writes ``created_time`` (Vietnam time)."""
    return datetime.fromtimestamp(at, VIETNAM).strftime("%Y-%m-%d %H:%M:%S")


def _json(data: Any, status: int = 200) -> GatewayResponse:
    return GatewayResponse(status=status, body=msgspec.json.encode(data))
