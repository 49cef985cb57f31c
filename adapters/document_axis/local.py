"""The province's own axis: documents between its agencies never leave the province.

A document's receivers that are agencies of the directory are its local legs:
one with a document system (``Agency.upstream``) is handed to it through the
gateway's delivery queue (``AdapterHost.accept``: durable, retried,
dead-lettered, on record); one without gets it in its mailbox here
(``AdapterHost.hold``: durable, on record), which it pulls through the same
routes as its axis mailbox. The others (other provinces' agencies) are the
national leg: one ``sendEdoc``. A document with no national leg gets its id here.

When a document has both, the edXML sent to the axis still names every
receiver (it may be signed: it is not rewritten), so the axis also lists it
for the local ones; the poller then finds a system's leg already accepted
(same key, ``edoc:<docId>:<OrganId>``) and only settles it on the axis; a
mailbox lists it once (the local copy).

Where each leg went, and the last status each receiver answered, is kept in
the adapter's state (``host.state``, key ``doc:<docId>``, found by the edXML
DocumentId its answers name through ``ref:<DocumentId>``) and shown by
``getDocumentReceivers``; a leg's delivery state is read from the queue or the
mailbox. A recall, update or replace (BussinessDocType 1, 2, 3) of a document
sent here is noted on the original's record; its receivers' answers (13, 15,
16) show on both. Records and settled mailbox items unchanged for
``retention`` are deleted (``purge``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from adapters.base import AdapterHost, GatewayRequest, InboundMessage, InboundRefused
from adapters.document_axis.settings import STATUS, DocumentAxisSettings
from adapters.errors import RequestRejected
from adapters.logs import get_logger

log = get_logger(__name__)


class Leg(msgspec.Struct, kw_only=True):
    """One receiver of a document: how it was sent and what it answered last."""

    organ_id: str
    via: Literal["local", "mailbox", "national"]
    """``local``: to its system through the delivery queue; ``mailbox``: held here for it
    to pull; ``national``: in the ``sendEdoc`` to the axis."""
    message_id: str = ""
    """The id on record (message log, delivery queue) of a local or mailbox leg."""
    sent_at: float
    status: str = ""
    """The last StatusCode the receiver answered (edXML status message), ``""`` if none."""
    status_at: float | None = None


class Amendment(msgspec.Struct, kw_only=True):
    """A recall, update or replace sent for a document (its own record: ``doc_id``)."""

    doc_id: str
    business: int
    sent_at: float


class Sent(msgspec.Struct, kw_only=True):
    doc_id: str
    sender: str
    legs: list[Leg]
    document_id: str = ""
    """Its edXML DocumentId (what answers name)."""
    business: int = 0
    """BussinessDocType: 0 new, 1 recall, 2 update, 3 replace."""
    amends: str = ""
    """A recall, update or replace of a document sent here: the original's docId."""
    amendments: list[Amendment] = []


TAKE_BACK = frozenset({"13", "15", "16"})
"""Answers about a recall, update or replace (edxml.StatusCode TAKE_BACK_*)."""


class LocalExchange:
    def __init__(self, name: str, settings: DocumentAxisSettings) -> None:
        self.name = name
        self.settings = settings

    def local_receivers(self, receivers: list[str]) -> list[str]:
        """The receivers this gateway delivers to itself: every agency of the directory."""
        directory = self.settings.directory()
        return [r for r in receivers if r in directory]

    def check_systems(self, host: AdapterHost, receivers: list[str]) -> None:
        """Refuse before anything is sent if a local receiver's system is gone (a reload)."""
        directory = self.settings.directory()
        for organ_id in receivers:
            system = directory[organ_id].upstream
            if system and not host.has_upstream(system):
                raise RequestRejected(
                    f"the system of agency {organ_id} is not configured",
                    errors=[{"path": "To", "message": f"{organ_id} cannot receive now"}],
                )

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    async def deliver(
        self,
        host: AdapterHost,
        doc_id: str,
        kind: str,
        sender: str,
        receivers: list[str],
        body: bytes,
    ) -> list[Leg]:
        """Accept the message for each local receiver (its system or its mailbox); refused as
        a whole if one is.

        Its signatures are checked once (``inbound.verify_signatures``), with the first leg,
        before anything is stored; that leg's record holds the result (every leg's record
        has the same body digest).
        """
        directory = self.settings.directory()
        legs: list[Leg] = []
        for organ_id in receivers:
            system = directory[organ_id].upstream
            message = leg_message(
                self.settings,
                self.name,
                doc_id=doc_id,
                kind=kind,
                sender=sender,
                organ_id=organ_id,
                target=system,
                body=body,
            )
            if legs:
                message.verify_signatures = "off"
            sent_at = now()  # before: its delivery may be done before accept returns
            try:
                if system:
                    message_id, _ = await host.accept(message)
                else:
                    message_id, _ = await host.hold(organ_id, doc_id, message)
            except InboundRefused as refusal:
                raise RequestRejected(
                    refusal.detail, errors=[{"path": "", "message": refusal.detail}]
                ) from None
            via: Literal["local", "mailbox"] = "local" if system else "mailbox"
            legs.append(Leg(organ_id=organ_id, via=via, message_id=message_id, sent_at=sent_at))
            log.info("local_axis_accepted", upstream=self.name, organ=organ_id, doc_id=doc_id)
        return legs

    async def original(self, host: AdapterHost, document_id: str) -> Sent | None:
        """The record of the document sent here whose edXML DocumentId is ``document_id``."""
        doc_id = await host.state.get(f"ref:{document_id}") if document_id else None
        return None if doc_id is None else await self.sent(host, doc_id)

    async def record(self, host: AdapterHost, sent: Sent, original: Sent | None = None) -> None:
        """Keep where each leg went, findable by the edXML DocumentId its answers name; a
        recall, update or replace also on the record of the ``original`` it changes."""
        if original is not None:
            sent.amends = original.doc_id
            amendment = Amendment(doc_id=sent.doc_id, business=sent.business, sent_at=now())
            await self._change(host, original.doc_id, lambda old: old.amendments.append(amendment))
        await self._put(host, sent)
        sent_again = original is not None and original.document_id == sent.document_id
        if sent.document_id and not sent_again:  # answers to the same DocumentId: the original
            await host.state.put(f"ref:{sent.document_id}", sent.doc_id)

    @staticmethod
    async def _put(host: AdapterHost, sent: Sent) -> None:
        await host.state.put(f"doc:{sent.doc_id}", msgspec.json.encode(sent).decode())

    @staticmethod
    async def _change(host: AdapterHost, doc_id: str, change: Callable[[Sent], None]) -> None:
        """Apply ``change`` to the record as it is now: answers from several receivers (or
        replicas) arrive together, and none may overwrite another's."""
        key = f"doc:{doc_id}"
        while (raw := await host.state.get(key)) is not None:
            record = msgspec.json.decode(raw, type=Sent)
            change(record)
            if await host.state.swap(key, raw, msgspec.json.encode(record).decode()):
                return

    async def keep(self, host: AdapterHost, doc_id: str) -> None:
        """Start the retention of ``doc_id``'s record again, if sent here: it shows the state
        of a mailbox copy just settled, and must not be purged before that copy."""
        await self._change(host, doc_id, lambda record: None)

    async def sent(self, host: AdapterHost, doc_id: str) -> Sent | None:
        raw = await host.state.get(f"doc:{doc_id}")
        return None if raw is None else msgspec.json.decode(raw, type=Sent)

    async def answered(
        self, host: AdapterHost, document_id: str, receiver: str, status_code: str
    ) -> None:
        """Note a receiver's status on the record of the document it answers, if sent here;
        an answer about a recall, update or replace on the original's record and the last
        change's both."""
        sent = await self.original(host, document_id)
        if sent is None:
            return
        latest = sent.amendments[-1].doc_id if sent.amendments else ""
        related = sent.amends or (latest if status_code in TAKE_BACK else "")
        answered_at = now()

        def note(record: Sent) -> None:
            for leg in record.legs:
                if leg.organ_id == receiver:
                    leg.status, leg.status_at = status_code, answered_at

        for doc_id in (sent.doc_id, related) if related else (sent.doc_id,):
            await self._change(host, doc_id, note)
        await host.state.put(f"ref:{document_id}", sent.doc_id)  # kept as long as the record

    async def receivers(self, host: AdapterHost, sent: Sent) -> list[dict[str, Any]]:
        """Each receiver: where it went, its delivery state, its last answer, with times."""
        view: list[dict[str, Any]] = []
        for leg in sent.legs:
            state, updated = "sent", leg.sent_at
            if leg.via == "local":
                delivery = await host.delivery(leg.message_id)
                if delivery is not None:
                    state, updated = str(delivery["state"]), float(delivery["updated_at"])
            elif leg.via == "mailbox":
                held = await host.mailboxes.get(leg.organ_id, sent.doc_id)
                if held is not None:
                    state, updated = held.state, held.updated_at
            view.append(
                {
                    "organId": leg.organ_id,
                    "via": leg.via,
                    "messageId": leg.message_id or None,
                    "sentAt": leg.sent_at,
                    "delivery": state,
                    "deliveryAt": updated,
                    "status": leg.status or None,
                    "statusAt": leg.status_at,
                }
            )
        return view

    async def purge(self, host: AdapterHost, before: float) -> int:
        """Forget settled mailbox items, then records, unchanged since ``before`` (a record
        outlives the copies it shows the state of)."""
        purged = await host.mailboxes.purge(before)
        return (
            purged + await host.state.purge("doc:", before) + await host.state.purge("ref:", before)
        )


def now() -> float:
    return time.time()


def leg_message(
    settings: DocumentAxisSettings,
    source: str,
    *,
    doc_id: str,
    kind: str,
    sender: str,
    organ_id: str,
    target: str,
    body: bytes,
    warnings: list[dict[str, str]] | None = None,
) -> InboundMessage:
    """One receiver's copy, for its agency's system. The key is the same whether the copy came
    locally or through the national poll, so a split document is delivered once."""
    inbound = settings.inbound
    operation = inbound.status_operation if kind == STATUS else inbound.document_operation
    request = GatewayRequest(
        operation=operation,
        method="POST",
        path=operation.rpartition(" ")[2],
        body=body,
        content_type="application/xml",
        headers={
            "x-lgsp-edoc-id": doc_id,
            "x-lgsp-message-type": kind,
            "x-lgsp-from": sender,
            "x-lgsp-to": organ_id,
        },
        client_id=source,
    )
    return InboundMessage(
        key=f"edoc:{doc_id}:{organ_id}",
        upstream=target,
        source=source,
        request=request,
        verify_signatures=inbound.verify_signatures,
        warnings=warnings or [],
    )
