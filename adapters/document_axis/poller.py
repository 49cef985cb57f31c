"""Inbound: take what the axis holds for the province's agencies to their own systems.

Every poll interval, for each agency in ``agencies``: list its mailbox, then
per message download it (streamed into a spooled file, hash checked), read
its header, and hand it to the agency's system through ``AdapterHost.accept``
(durable before it returns); only then tell the axis ``done``. A message no
agency here can take is marked ``fail`` with the reason. A failure leaves the
message in the mailbox for the next poll, and ``accept`` drops a repeat.
"""

from __future__ import annotations

import asyncio
from typing import Any, BinaryIO

import schemas.edxml as edxml
from adapters.base import AdapterHost, GatewayRequest, InboundMessage, InboundRefused
from adapters.document_axis.client import AxisClient
from adapters.document_axis.messages import document_header, temp_spool
from adapters.document_axis.settings import DOCUMENT, STATUS, DocumentAxisSettings
from adapters.errors import UpstreamError
from adapters.logs import get_logger
from adapters.units import seconds

log = get_logger(__name__)

MAX_BACKOFF_FACTOR = 16
"""After repeated failed polls, wait up to this many poll intervals."""


class Unroutable(Exception):
    """No agency system here can take this message; the reason goes back to the axis."""


class Poller:
    def __init__(
        self, name: str, settings: DocumentAxisSettings, client: AxisClient, host: AdapterHost
    ) -> None:
        self.name = name
        self.settings = settings
        self.client = client
        self.host = host
        self.timeout = seconds(settings.poll_timeout)

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
        """One pass over every mailbox: (some mailbox had a full page, some agency failed)."""
        full = failed = False
        for organ_id in self.settings.agencies:
            try:
                items = await self.client.call(
                    self.settings.paths.get_received_edoc_list,
                    organ_id,
                    {"limit": self.settings.page_size},
                    self.timeout,
                )
            except UpstreamError as error:
                log.warning(
                    "axis_list_failed", upstream=self.name, organ=organ_id, error=error.code
                )
                failed = True
                continue
            full = full or len(items) >= self.settings.page_size
            for item in items:
                failed = not await self.take(organ_id, item) or failed
        return full, failed

    async def take(self, organ_id: str, item: dict[str, Any]) -> bool:
        """Hand one message on and settle it on the axis; False if it must be tried again."""
        doc_id = str(item.get("docId") or "")
        if not doc_id:
            log.warning("axis_item_without_doc_id", upstream=self.name, organ=organ_id)
            return True
        message_type = str(item.get("messageType") or DOCUMENT)
        try:
            with temp_spool() as spool:
                size = await self.client.fetch(organ_id, doc_id, spool, self.timeout)
                spool.seek(0)
                try:
                    operation, sender, target = self.route(spool, message_type, organ_id)
                except Unroutable as refusal:
                    log.warning(
                        "axis_message_unroutable",
                        upstream=self.name,
                        organ=organ_id,
                        doc_id=doc_id,
                        reason=str(refusal),
                    )
                    await self.settle(organ_id, doc_id, "fail", str(refusal))
                    return True
                spool.seek(0)
                body = spool.read(size)
            request = GatewayRequest(
                operation=operation,
                method="POST",
                path=operation.rpartition(" ")[2],
                body=body,
                content_type="application/xml",
                headers={
                    "x-lgsp-edoc-id": doc_id,
                    "x-lgsp-message-type": message_type,
                    "x-lgsp-from": sender,
                    "x-lgsp-to": organ_id,
                },
                client_id=self.name,
            )
            message = InboundMessage(
                key=f"edoc:{doc_id}:{organ_id}",
                upstream=target,
                source=self.name,
                request=request,
                verify_signatures=self.settings.inbound.verify_signatures,
            )
            try:
                _, new = await self.host.accept(message)
            except InboundRefused as refusal:
                log.warning(
                    "axis_message_refused",
                    upstream=self.name,
                    organ=organ_id,
                    doc_id=doc_id,
                    reason=refusal.detail,
                )
                await self.settle(organ_id, doc_id, "fail", refusal.detail)
                return True
            del body, request, message  # no second copy of a large document while settling
            log.info(
                "axis_message_accepted",
                upstream=self.name,
                organ=organ_id,
                doc_id=doc_id,
                target=target,
                repeat=not new,
            )
            await self.settle(organ_id, doc_id, "done")
        except UpstreamError as error:
            log.warning(
                "axis_take_failed",
                upstream=self.name,
                organ=organ_id,
                doc_id=doc_id,
                error=error.code,
            )
            return False
        except Exception as exc:  # storage down: the message stays in the mailbox
            log.warning(
                "axis_accept_failed",
                upstream=self.name,
                organ=organ_id,
                doc_id=doc_id,
                error=type(exc).__name__,
            )
            return False
        return True

    def route(self, spool: BinaryIO, message_type: str, organ_id: str) -> tuple[str, str, str]:
        """(operation, sender OrganId, upstream) for a message found in ``organ_id``'s mailbox.

        A document goes to the mailbox agency's system, which must be among its
        receivers; a status goes to the system of the agency whose document it
        answers.
        """
        inbound = self.settings.inbound
        try:
            if message_type == STATUS:
                status = edxml.parse_status(spool).header
                operation, sender, owner = (
                    inbound.status_operation,
                    status.From.OrganId,
                    status.ResponseFor.OrganId,
                )
            else:
                header = document_header(spool)
                if organ_id not in {to.OrganId for to in header.To}:
                    raise Unroutable(f"the document is not addressed to {organ_id}")
                operation, sender, owner = inbound.document_operation, header.From.OrganId, organ_id
        except edxml.EdxmlInvalid as exc:
            first = exc.errors[0]
            raise Unroutable(f"invalid edXML: {first.rule} at {first.path}") from None
        except edxml.EdxmlError as exc:
            raise Unroutable(f"unreadable edXML: {type(exc).__name__}") from None
        target = self.settings.agencies.get(owner)
        if target is None:
            raise Unroutable(f"agency {owner} is not served by this LGSP")
        if not self.host.has_upstream(target):
            raise Unroutable(f"the system of agency {owner} is not configured")
        return operation, sender, target

    async def settle(self, organ_id: str, doc_id: str, status: str, reason: str = "") -> None:
        """``updateStatus`` on the axis (``done`` or ``fail`` with why)."""
        body = {"docId": doc_id, "status": status, "status_desc": reason}
        await self.client.call(self.settings.paths.update_status, organ_id, body, self.timeout)
