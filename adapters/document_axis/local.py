"""The province's own axis: documents between its agencies never leave the province.

A document's receivers that are agencies of the directory with a document
system (``Agency.upstream``) are its local legs: each is handed to that system
through the gateway's delivery queue (``AdapterHost.accept``: durable,
retried, dead-lettered, on record). The others (other provinces' agencies,
and agencies of ours that pull from the axis mailbox) are the national leg:
one ``sendEdoc``. A document with no national leg gets its id here.

When a document has both, the edXML sent to the axis still names every
receiver (it may be signed: it is not rewritten), so the axis also lists it
for the local ones; the poller then finds their leg already accepted (same
key, ``edoc:<docId>:<OrganId>``) and only settles it on the axis.

Where each leg went, and the last status each receiver answered, is kept in
the adapter's state (``host.state``, key ``doc:<docId>``) and shown by
``getDocumentReceivers``; a leg's delivery state is read from the queue.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

from adapters.base import AdapterHost, GatewayRequest, InboundMessage, InboundRefused
from adapters.document_axis.settings import STATUS, DocumentAxisSettings
from adapters.errors import RequestRejected
from adapters.logs import get_logger

log = get_logger(__name__)


class Leg(msgspec.Struct, kw_only=True):
    """One receiver of a document: how it was sent and what it answered last."""

    organ_id: str
    via: str
    """``local`` (the province's axis) or ``national``."""
    message_id: str = ""
    """The delivery queue's id of a local leg."""
    sent_at: float
    status: str = ""
    """The last StatusCode the receiver answered (edXML status message), ``""`` if none."""
    status_at: float | None = None


class Sent(msgspec.Struct, kw_only=True):
    doc_id: str
    sender: str
    legs: list[Leg]


class LocalExchange:
    def __init__(self, name: str, settings: DocumentAxisSettings) -> None:
        self.name = name
        self.settings = settings

    def local_receivers(self, receivers: list[str]) -> list[str]:
        """The receivers this gateway delivers to itself (an agency here with a system)."""
        directory = self.settings.directory()
        return [r for r in receivers if r in directory and directory[r].upstream]

    def check_systems(self, host: AdapterHost, receivers: list[str]) -> None:
        """Refuse before anything is sent if a local receiver's system is gone (a reload)."""
        directory = self.settings.directory()
        for organ_id in receivers:
            if not host.has_upstream(directory[organ_id].upstream):
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
        """Accept the message for each local receiver's system; refused as a whole if one is."""
        directory = self.settings.directory()
        legs: list[Leg] = []
        for organ_id in receivers:
            message = leg_message(
                self.settings,
                self.name,
                doc_id=doc_id,
                kind=kind,
                sender=sender,
                organ_id=organ_id,
                target=directory[organ_id].upstream,
                body=body,
            )
            try:
                message_id, _ = await host.accept(message)
            except InboundRefused as refusal:
                raise RequestRejected(
                    refusal.detail, errors=[{"path": "", "message": refusal.detail}]
                ) from None
            legs.append(Leg(organ_id=organ_id, via="local", message_id=message_id, sent_at=now()))
            log.info("local_axis_accepted", upstream=self.name, organ=organ_id, doc_id=doc_id)
        return legs

    async def record(self, host: AdapterHost, sent: Sent, document_id: str) -> None:
        """Keep where each leg went, findable by the edXML DocumentId its answers name."""
        await host.state.put(f"doc:{sent.doc_id}", msgspec.json.encode(sent).decode())
        if document_id:
            await host.state.put(f"ref:{document_id}", sent.doc_id)

    async def sent(self, host: AdapterHost, doc_id: str) -> Sent | None:
        raw = await host.state.get(f"doc:{doc_id}")
        return None if raw is None else msgspec.json.decode(raw, type=Sent)

    async def answered(
        self, host: AdapterHost, document_id: str, receiver: str, status_code: str
    ) -> None:
        """Note a receiver's status on the record of the document it answers, if sent here."""
        doc_id = await host.state.get(f"ref:{document_id}") if document_id else None
        sent = None if doc_id is None else await self.sent(host, doc_id)
        if sent is None:
            return
        for leg in sent.legs:
            if leg.organ_id == receiver:
                leg.status, leg.status_at = status_code, now()
        await host.state.put(f"doc:{sent.doc_id}", msgspec.json.encode(sent).decode())

    async def receivers(self, host: AdapterHost, sent: Sent) -> list[dict[str, Any]]:
        """Each receiver: where it went, its delivery state, its last answer, with times."""
        view: list[dict[str, Any]] = []
        for leg in sent.legs:
            state, updated = "sent", leg.sent_at
            if leg.via == "local":
                delivery = await host.delivery(leg.message_id)
                if delivery is not None:
                    state, updated = str(delivery["state"]), float(delivery["updated_at"])
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
