"""Online payment of a dossier's fees through the portal (PayGov): records and checksum.

The payment request and the callback carry an HMAC checksum over a list of
their fields (HMAC-SHA1 in the public code). Which fields, in which order,
is not public: callers pass the list, so it stays configurable. The
gateway's adapter and the mock portal each hold their own list and secret,
so a wrong order or key on either side fails, as it would in production.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import msgspec

from schemas.dvcqg.records import Code, EmailAddress, Name, PhoneNumber, PortalTime, Text

ChecksumAlgorithm = Literal["hmac-sha1", "hmac-sha256"]
_DIGESTS = {"hmac-sha1": hashlib.sha1, "hmac-sha256": hashlib.sha256}
CHECKSUM_SEPARATOR = "|"

TransactionId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]{1,40}$")]
MAX_FEE = 10**12
"""One fee line, in VND: a thousand billion dong, far above any fee, far below what a
64-bit total of ``MAX_FEE_LINES`` lines or the portal's own fields can hold."""
MAX_FEE_LINES = 100
Amount = Annotated[int, msgspec.Meta(ge=1, le=MAX_FEE, description="an amount in VND (whole dong)")]
Total = Annotated[
    int,
    msgspec.Meta(ge=1, le=MAX_FEE * MAX_FEE_LINES, description="the sum of the fee lines, VND"),
]
IdNumber = Annotated[
    str,
    msgspec.Meta(pattern=r"^([0-9]{9}|[0-9]{12})$", description="a 9-digit ID or 12-digit CCCD"),
]
Account = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z.-]{4,34}$")]


def checksum(
    values: Mapping[str, Any], fields: Sequence[str], secret: str, algorithm: ChecksumAlgorithm
) -> str:
    """Hex HMAC of ``fields``' values joined by ``|`` (a missing field counts as empty).

    A nested object (``bill_info``) counts as its compact JSON with sorted keys.
    """
    message = CHECKSUM_SEPARATOR.join(_text(values.get(field)) for field in fields)
    return hmac.new(secret.encode(), message.encode(), _DIGESTS[algorithm]).hexdigest()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return msgspec.json.encode(value, order="sorted").decode()
    return str(value)


class _Record(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class PhiLePhi(_Record, kw_only=True):
    """One fee line: ``LoaiPhiLePhi`` 1 a fee (phí), 2 a charge (lệ phí)."""

    LoaiPhiLePhi: Literal[1, 2]
    MaPhiLePhi: Code
    TenPhiLePhi: Text
    SoTien: Amount


class HoaDon(_Record, kw_only=True):
    """``bill_info``: the dossier, its fees, who receives and who pays."""

    MaHoSo: Code
    MaTTHC: Code
    TenTTHC: Text
    PhiLePhi: Annotated[list[PhiLePhi], msgspec.Meta(min_length=1, max_length=MAX_FEE_LINES)]
    TKThuHuong: Account
    """Beneficiary account number."""
    MaNHThuHuong: Code
    """Beneficiary bank code."""
    TenTKThuHuong: Text
    HoTenNguoiNop: Name
    SoCMNDNguoiNop: IdNumber
    DiaChiNguoiNop: Text
    SoDienThoaiNguoiNop: PhoneNumber | None = None
    EmailNguoiNop: EmailAddress | None = None
    MaCoQuanQD: Code
    """The agency that decided the fees."""
    TenCoQuanQD: Text
    KhoBac: Code
    """The State Treasury (Kho bạc) office that collects."""


class ThanhToanHoSo(HoaDon, kw_only=True):
    """What an agency system sends to start a payment (``paygov.create``)."""

    transaction_id: TransactionId | None = None
    """The agency's own id for this payment; none: the gateway makes one."""


class PayGovRequest(_Record, kw_only=True):
    """The payment request as sent to the portal's payment endpoint."""

    client_id: Code
    transaction_id: TransactionId
    trans_amount: Total
    command: Literal["PAY"] = "PAY"
    version: Literal["3.0"] = "3.0"
    locale: str = "vi"
    country_code: str = "VN"
    currency_code: str = "VND"
    bill_info: HoaDon
    checksum: str


class PayGovAnswer(msgspec.Struct, kw_only=True):
    """The portal's answer to a payment request."""

    error_code: str | int
    message: str = ""
    transaction_id: str | None = None
    payment_url: str | None = None


class PayGovCallback(msgspec.Struct, kw_only=True):
    """The portal's report that a payment ended (``error_code`` "00": paid).

    Not ``forbid_unknown_fields``: the portal owns this shape; what matters is
    that the checksummed fields verify.
    """

    client_id: str
    transaction_id: TransactionId
    trans_amount: Annotated[int, msgspec.Meta(ge=0, le=MAX_FEE * MAX_FEE_LINES)]
    paygate_trans_id: str
    error_code: str
    message: str = ""
    paid_at: PortalTime | None = None
    checksum: str = ""
