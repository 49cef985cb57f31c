"""PayGov: start a payment of a dossier's fees, and take the portal's signed callback.

``paygov.create`` signs the payment request (HMAC over the configured
fields) and sends it to the portal's payment endpoint, outside the session
envelope: PayGov authenticates by checksum. ``paygov.callback`` is called by
the portal itself through a public route, so its checksum is the only proof
of origin: a callback that does not verify is refused (403) and stays on
record in the message log. A verified one is kept in the adapter's state and
handed to the agency system named by ``payment.notify_upstream`` through the
gateway's durable delivery queue.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any, Protocol

import msgspec

from adapters import bodies
from adapters.base import (
    AdapterHost,
    AdapterState,
    GatewayRequest,
    GatewayResponse,
    InboundMessage,
)
from adapters.dvcqg.agency import convert, json_answer
from adapters.dvcqg.errors import ChecksumInvalid
from adapters.dvcqg.portal import Portal
from adapters.dvcqg.settings import DvcqgSettings, PaymentSettings
from adapters.errors import UpstreamError
from adapters.logs import get_logger
from schemas.dvcqg import paygov


class PortalAdapter(Protocol):
    """What the payment operations use of the portal adapter that runs them."""

    name: str
    settings: DvcqgSettings
    portal: Portal
    host: AdapterHost | None

    def state(self) -> AdapterState | None: ...


CREATE = "paygov.create"
CALLBACK = "paygov.callback"
STATE_KEY = "paygov:{}"
"""State key of a payment (value: JSON with the dossier, amount and outcome)."""
PAID = "00"
ACK = {"error_code": "00", "message": "Đã nhận kết quả thanh toán"}
"""What the portal gets back for a callback the gateway has taken."""

log = get_logger(__name__)


def _payment(adapter: PortalAdapter) -> PaymentSettings:
    if adapter.settings.payment is None:
        raise UpstreamError(f"{adapter.name}: no 'payment' settings, so no PayGov operations")
    return adapter.settings.payment


async def create(adapter: PortalAdapter, request: GatewayRequest) -> GatewayResponse:
    settings = _payment(adapter)
    bill = convert(bodies.json_body(request), paygov.ThanhToanHoSo)
    bill_info = msgspec.to_builtins(bill)
    bill_info.pop("transaction_id", None)
    transaction_id = bill.transaction_id or secrets.token_hex(10).upper()
    amount = sum(line.SoTien for line in bill.PhiLePhi)
    wire: dict[str, Any] = {
        "client_id": settings.client_id,
        "transaction_id": transaction_id,
        "trans_amount": amount,
        "command": "PAY",
        "version": "3.0",
        "locale": settings.locale,
        "country_code": settings.country_code,
        "currency_code": settings.currency_code,
        "bill_info": bill_info,
    }
    wire["checksum"] = paygov.checksum(
        wire, settings.request_fields, settings.secret, settings.algorithm
    )
    reply = await adapter.portal.post(settings.path, wire, request.deadline)
    adapter.portal.raise_for(reply, CREATE)
    answer = msgspec.convert(reply.document, paygov.PayGovAnswer, strict=False)
    state = adapter.state()
    if state is not None:
        record = {"MaHoSo": bill.MaHoSo, "trans_amount": amount, "state": "created"}
        await state.put(STATE_KEY.format(transaction_id), msgspec.json.encode(record).decode())
    log.info("paygov_created", upstream=adapter.name, transaction_id=transaction_id)
    return json_answer(
        {
            "transaction_id": transaction_id,
            "trans_amount": amount,
            "payment_url": answer.payment_url,
            "message": answer.message,
        }
    )


async def callback(adapter: PortalAdapter, request: GatewayRequest) -> GatewayResponse:
    settings = _payment(adapter)
    data = bodies.json_body(request)
    given = data.get("checksum") if isinstance(data, dict) else None
    if not isinstance(given, str) or not given:
        raise ChecksumInvalid(
            "the payment callback has no checksum",
            errors=[{"path": "$.checksum", "message": "required"}],
        )
    expected = paygov.checksum(data, settings.callback_fields, settings.secret, settings.algorithm)
    if not hmac.compare_digest(given.lower(), expected):
        log.warning("paygov_callback_forged", upstream=adapter.name)
        raise ChecksumInvalid(
            "the payment callback's checksum does not verify",
            errors=[{"path": "$.checksum", "message": "does not match the signed fields"}],
        )
    report = convert(data, paygov.PayGovCallback)
    host = adapter.host
    if host is None:  # nowhere durable to keep it: the portal must send it again later
        raise UpstreamError("payment callbacks need the running gateway (adapter not started)")
    key = STATE_KEY.format(report.transaction_id)
    known = await host.state.get(key)
    ma_ho_so = msgspec.json.decode(known).get("MaHoSo") if known else None
    outcome = {
        "transaction_id": report.transaction_id,
        "paygate_trans_id": report.paygate_trans_id,
        "MaHoSo": ma_ho_so,
        "trans_amount": report.trans_amount,
        "paid": report.error_code == PAID,
        "error_code": report.error_code,
        "message": report.message,
        "paid_at": report.paid_at,
    }
    body = msgspec.json.encode(outcome)
    await host.state.put(key, msgspec.json.encode({**outcome, "state": "reported"}).decode())
    if settings.notify_upstream is not None:
        if not host.has_upstream(settings.notify_upstream):
            log.warning("paygov_notify_upstream_missing", upstream=settings.notify_upstream)
        operation = settings.notify_operation
        await host.accept(
            InboundMessage(
                key=key,
                upstream=settings.notify_upstream,
                source=adapter.name,
                request=GatewayRequest(
                    operation=operation,
                    method="POST",
                    path=operation,
                    body=body,
                    content_type="application/json",
                    headers={"content-type": "application/json"},
                    request_id=request.request_id,
                ),
            )
        )
    log.info("paygov_callback", upstream=adapter.name, transaction_id=report.transaction_id)
    return json_answer(ACK)
