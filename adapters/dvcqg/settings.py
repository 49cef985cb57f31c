"""Settings of ``type: dvcqg``: where the portal is, who we are, and its uncertain details.

The portal's specification is not public:
paths, error codes and the payment checksum's field order are settings, with
defaults that match the mock portal, so a province can fit them to the real
one without a code change.

Which public client each wire detail follows (OpenCPS:
``VietOpenCPS/opencps-v2`` ``DVCQGIntegrationActionImpl.java``):

- OpenCPS: the login ``{username, password}`` answered by ``{session,
  error_code: 0}``; ``{session, madonvi, service}`` with the service's keys at
  the top level; ``DongBoHoSoMC`` with ``isUpdating`` ``"True"``/``"False"``
  and ``data``; ``CapNhatTienDoHoSoMC`` with ``data`` only; records as strings
  with ``""`` for what is empty and ``ThongTinKhac`` always sent;
  ``TraCuuHoSo`` with a top-level ``mahoso`` (answer ``result: [record]``,
  empty when unknown); ``LayThuTuc`` with ``maTTHC`` on the integration path
  (answer ``MATTHC``, ``TENTTHC``, ``LINHVUCTHUCHIEN[{MALINHVUC,
  TENLINHVUC}]``); catalogues on a separate share path.
- wire-evidence.md (clients besides OpenCPS): the ``dstcode`` header on every
  call, not only the login; the upper-case keys of ``LayDanhSachTTHC``,
  ``LayDanhMucCoQuan`` (``MADONVI, TENDONVI, CAPDONVI``), ``LayDanhMucLinhVuc``
  and ``LayDanhSachHoiDapGuiTuDVCQG`` (``HOIDAPID, NOIDUNG, ...``).
- Assumptions (no public client shows them): the paths below; the error
  codes; catalogue and question filters (``MaLinhVuc``, ``MaCoQuanCha``,
  ``TuNgay``, ...) sent as top-level keys with our field names; booleans
  inside records written like ``isUpdating``; ``DongBoHoiDap`` sent like a
  progress step; the receipt's ``result`` (when the portal gives none, the
  receipt repeats what was sent); PayGov's fields and checksum order.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from adapters.base import AdapterSettings
from adapters.httpclient import PoolSettings, TlsSettings
from schemas.dvcqg.paygov import ChecksumAlgorithm

Path = Annotated[str, msgspec.Meta(pattern=r"^/", description="a path starting with /")]
Secret = Annotated[str, msgspec.Meta(min_length=1, description="use ${ENV} in the YAML")]

REQUEST_CHECKSUM_FIELDS = (
    "client_id",
    "transaction_id",
    "trans_amount",
    "command",
    "version",
    "locale",
    "country_code",
    "currency_code",
    "bill_info",
)
CALLBACK_CHECKSUM_FIELDS = (
    "client_id",
    "transaction_id",
    "paygate_trans_id",
    "trans_amount",
    "error_code",
    "paid_at",
)


class ErrorCodes(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the portal's ``error_code`` values mean; any other code is a portal error (502)."""

    success: tuple[str, ...] = ("0", "00")
    session_expired: tuple[str, ...] = ("-2",)
    """The session is unknown or expired: log in again once and retry."""
    auth_failed: tuple[str, ...] = ("-1", "98")
    """Our credentials (login, agency code, payment checksum) were refused."""
    data_invalid: tuple[str, ...] = ("01", "02")
    """The record was refused: the agency's data is at fault (422)."""
    not_found: tuple[str, ...] = ("03",)
    """No such dossier: a lookup answers 404, a sync 422."""


class PaymentSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Online payment through PayGov (``paygov.create`` / ``paygov.callback``)."""

    path: Path = "/api/paygov/payments"
    client_id: Annotated[str, msgspec.Meta(min_length=1)]
    secret: Secret
    """Shared HMAC key of requests and callbacks."""
    algorithm: ChecksumAlgorithm = "hmac-sha1"
    request_fields: tuple[str, ...] = REQUEST_CHECKSUM_FIELDS
    """The payment request's fields under the checksum, in order."""
    callback_fields: tuple[str, ...] = CALLBACK_CHECKSUM_FIELDS
    locale: str = "vi"
    country_code: str = "VN"
    currency_code: str = "VND"
    notify_upstream: str | None = None
    """The agency system that gets each verified callback (stored and forwarded)."""
    notify_operation: str = "/paygov/callback"
    """The ``operation`` of that delivery, as a route would name it (a path for ``http``)."""


class DvcqgSettings(AdapterSettings, kw_only=True, forbid_unknown_fields=True):
    base_url: Annotated[
        str, msgspec.Meta(pattern=r"^https?://", description="an http:// or https:// URL")
    ]
    auth_path: Path = "/api/auth"
    integration_path: Path = "/api/integration"
    share_path: Path = "/api/share"
    """Where the catalogue services are."""
    username: Annotated[str, msgspec.Meta(min_length=1)]
    password: Secret
    dstcode: Annotated[str, msgspec.Meta(min_length=1)]
    """Sent as the ``dstcode`` header of every request (the login and each call)."""
    madonvi: Annotated[str, msgspec.Meta(min_length=1)]
    """Our agency code, in every call's envelope."""
    result_key: str = "result"
    """The key of the portal's answer that holds the result data."""
    error_codes: ErrorCodes = msgspec.field(default_factory=ErrorCodes)
    payment: PaymentSettings | None = None
    tls: TlsSettings = msgspec.field(default_factory=TlsSettings)
    pool: PoolSettings = msgspec.field(default_factory=PoolSettings)
