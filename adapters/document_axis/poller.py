"""Inbound: take what the axis holds for the province's agencies to their own systems.

Every poll interval, for each kind of message (``edoc``, then ``status``):
list the account's mailbox (one for the whole ``systemid``), keep the items
whose ``to`` is one of ``agencies`` with a system (the others pull their
own), and per message download it (decoded into a spooled file), read its
header, and hand it to the system of each of its agencies here through
``AdapterHost.accept`` (durable before it returns); only then tell the axis ``done``.

Broken edXML rules do not stop a message: it is delivered, and its issues go
on record with it as warnings (a receiver may still read a document a
foreign builder wrote loosely). A message is refused on the axis (``fail``
with the reason) only when it cannot be read at all, is not addressed to the
agency it was listed for, has no system here to go to, or fails the
signature policy. A failure to download or store leaves it in the mailbox
for the next poll, and ``accept`` drops a repeat.
"""

from __future__ import annotations

import asyncio
from typing import Any, BinaryIO

import msgspec

import schemas.edxml as edxml
from adapters.base import AdapterHost, InboundRefused
from adapters.document_axis.client import AxisClient, receivers
from adapters.document_axis.local import LocalExchange, leg_message
from adapters.document_axis.messages import read_document_header, temp_spool
from adapters.document_axis.settings import DOCUMENT, STATUS, DocumentAxisSettings
from adapters.errors import UpstreamError
from adapters.logs import get_logger
from adapters.units import seconds

log = get_logger(__name__)

MAX_BACKOFF_FACTOR = 16
"""After repeated failed polls, wait up to this many poll intervals."""
SETTLED = ("done", "fail")
"""States of a list item that is no longer waiting (an axis may list those too)."""


class Unroutable(Exception):
    """No agency system here can take this message; the reason goes back to the axis."""


class Reading(msgspec.Struct, frozen=True):
    """What routing needs of a received message, and the rules it breaks."""

    sender: str
    addressed: list[str]
    """Documents: the To agencies; statuses: the agency whose document it answers."""
    warnings: list[dict[str, str]]
    document_id: str = ""
    """A status: the edXML DocumentId of the document it answers."""
    status_code: str = ""


class Poller:
    def __init__(
        self, name: str, settings: DocumentAxisSettings, client: AxisClient, host: AdapterHost
    ) -> None:
        self.name = name
        self.settings = settings
        self.client = client
        self.host = host
        self.timeout = seconds(settings.poll_timeout)
        self.local = LocalExchange(name, settings)
        self.systems = {
            organ_id: agency.upstream
            for organ_id, agency in settings.directory().items()
            if agency.upstream
        }
        """The agencies whose messages are taken to their systems; the others (``mailbox``)
        pull theirs from the axis mailbox through the gateway."""

    async def run(self) -> None:
        """Poll until cancelled; a failed poll waits longer before the next (up to 16x)."""
        interval = seconds(self.settings.poll_interval)
        failures = 0
        while True:
            try:
                full, failed = await self.poll()
            except Exception:  # a bug must not end inbound delivery for the whole province
                log.exception("axis_poll_crashed", upstream=self.name)
                full, failed = False, True
            failures = failures + 1 if failed else 0
            if not full or failed:
                await asyncio.sleep(interval * min(2**failures, MAX_BACKOFF_FACTOR))

    async def poll(self) -> tuple[bool, bool]:
        """One pass over the mailbox: (more than a page was waiting, something failed)."""
        full = failed = False
        for kind in (DOCUMENT, STATUS):
            try:
                items = await self.client.list_edocs(
                    self.settings.paths.get_received_edoc_list, kind, self.timeout
                )
            except UpstreamError as error:
                log.warning("axis_list_failed", upstream=self.name, kind=kind, error=error.code)
                failed = True
                continue
            waiting = self.ours(items)
            full = full or len(waiting) > self.settings.page_size
            for doc_id, agencies in list(waiting.items())[: self.settings.page_size]:
                failed = not await self.take(doc_id, kind, agencies) or failed
        return full, failed

    def ours(self, items: list[dict[str, Any]]) -> dict[str, list[str]]:
        """docId -> the agencies of this province it waits for (the mailbox has them all)."""
        waiting: dict[str, list[str]] = {}
        for item in items:
            doc_id = str(item.get("docId") or "")
            if not doc_id or str(item.get("status") or "").lower() in SETTLED:
                continue
            for organ_id in receivers(item):
                if organ_id in self.systems:
                    waiting.setdefault(doc_id, []).append(organ_id)
        return waiting

    async def take(self, doc_id: str, kind: str, agencies: list[str]) -> bool:
        """Hand one message on and settle it on the axis; False if it must be tried again."""
        try:
            with temp_spool() as spool:
                size = await self.client.fetch(doc_id, spool, self.timeout)
                spool.seek(0)
                try:
                    reading = self.read(spool, kind)
                except Unroutable as refusal:
                    await self.refuse(doc_id, str(refusal))
                    return True
                spool.seek(0)
                body = spool.read(size)
            accepted, refused = await self.deliver(doc_id, kind, agencies, reading, body)
            del body  # no second copy of a large document while settling
            reasons = "; ".join(
                reason if len(refused) == 1 else f"{organ_id}: {reason}"
                for organ_id, reason in refused.items()
            )
            if not accepted:
                await self.refuse(doc_id, reasons)
                return True
            if kind == STATUS:  # a national receiver's answer, on the sender's record
                await self.local.answered(
                    self.host, reading.document_id, reading.sender, reading.status_code
                )
            await self.settle(doc_id, "done", reasons)
        except UpstreamError as error:
            log.warning("axis_take_failed", upstream=self.name, doc_id=doc_id, error=error.code)
            return False
        except Exception as exc:  # storage down: the message stays in the mailbox
            log.warning(
                "axis_accept_failed", upstream=self.name, doc_id=doc_id, error=type(exc).__name__
            )
            return False
        return True

    async def deliver(
        self, doc_id: str, kind: str, agencies: list[str], reading: Reading, body: bytes
    ) -> tuple[list[str], dict[str, str]]:
        """Accept the message for each agency's system: (accepted agencies, refused -> why)."""
        accepted: list[str] = []
        refused: dict[str, str] = {}
        for organ_id in agencies:
            target = self.systems[organ_id]
            if organ_id not in reading.addressed:
                refused[organ_id] = f"the {_noun(kind)} is not addressed to {organ_id}"
                continue
            if not self.host.has_upstream(target):
                refused[organ_id] = f"the system of agency {organ_id} is not configured"
                continue
            message = leg_message(
                self.settings,
                self.name,
                doc_id=doc_id,
                kind=kind,
                sender=reading.sender,
                organ_id=organ_id,
                target=target,
                body=body,
                warnings=reading.warnings,
            )
            try:
                _, new = await self.host.accept(message)
            except InboundRefused as refusal:
                refused[organ_id] = refusal.detail
                continue
            accepted.append(organ_id)
            log.info(
                "axis_message_accepted",
                upstream=self.name,
                organ=organ_id,
                doc_id=doc_id,
                target=target,
                repeat=not new,
                warnings=sorted({w["rule"] for w in reading.warnings}),
            )
        return accepted, refused

    def read(self, spool: BinaryIO, kind: str) -> Reading:
        """Sender, addressees and broken rules; ``Unroutable`` if it cannot be read at all."""
        try:
            if kind == STATUS:
                status = edxml.parse_status(spool, strict=False)
                sender = status.header.From.OrganId
                addressed = [status.header.ResponseFor.OrganId]
                answers = status.header.ResponseFor.DocumentId or "", status.header.StatusCode
                issues = status.issues
            else:
                answers = "", ""
                header, issues = read_document_header(spool)
                sender, addressed = header.From.OrganId, [to.OrganId for to in header.To]
        except edxml.EdxmlError as exc:
            raise Unroutable(f"unreadable edXML: {exc}"[:200]) from None
        if not any(addressed):
            raise Unroutable(f"unreadable edXML: the {_noun(kind)} names no receiver")
        warnings = [{"path": i.path, "rule": i.rule, "message": i.message} for i in issues]
        return Reading(
            sender=sender,
            addressed=addressed,
            warnings=warnings,
            document_id=answers[0],
            status_code=answers[1],
        )

    async def refuse(self, doc_id: str, reason: str) -> None:
        log.warning("axis_message_refused", upstream=self.name, doc_id=doc_id, reason=reason)
        await self.settle(doc_id, "fail", reason)

    async def settle(self, doc_id: str, status: str, reason: str = "") -> None:
        """``updateStatus`` on the axis (``done``, or ``fail`` with why)."""
        await self.client.update_status(doc_id, status, reason, self.timeout)


def _noun(kind: str) -> str:
    return "status" if kind == STATUS else "document"
