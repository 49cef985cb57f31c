"""What a ``type: document_axis`` upstream is configured with.

The axis's exact paths, header names and error codes are not public: the
defaults are the names the vendor SDKs use (``document-axis.md``), and every
one can be changed in YAML without touching code.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from adapters.base import AdapterSettings
from adapters.httpclient import PoolSettings, TlsSettings
from adapters.units import Duration

OrganId = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$", description="an agency id like 000.00.12.H53"
    ),
]

DOCUMENT = "ElectronicDocument"
STATUS = "StatusDocument"


class AxisPaths(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where each axis operation lives, relative to ``base_url``."""

    send_edoc: str = "/sendEdoc"
    get_received_edoc_list: str = "/getReceivedEdocList"
    get_sent_edoc_list: str = "/getSentEdocList"
    get_edoc: str = "/getEdoc"
    update_status: str = "/updateStatus"


class AxisHeaders(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Names of the HTTP headers the axis reads (and ``hash-file`` on what it sends back)."""

    system_id: str = "systemId"
    secret: str = "secret"
    sender: str = "from"
    """The agency on whose behalf a call is made (the sender, for ``sendEdoc``)."""
    receivers: str = "to"
    """JSON list of receiver agency ids."""
    message_type: str = "messagetype"
    service_type: str = "servicetype"
    hash: str = "hash-file"
    """SHA-256 hex of the body."""


class Credentials(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The province's account on the axis; put ``${ENV}`` references here, never values."""

    system_id: Annotated[str, msgspec.Meta(min_length=1)]
    secret: Annotated[str, msgspec.Meta(min_length=1)]


class ErrorCodes(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How the axis's ``ErrorCode`` of a FAIL answer is read (others: an upstream error)."""

    rejected: list[str] = msgspec.field(default_factory=lambda: ["400", "409", "413"])
    """The data was refused (bad edXML, hash mismatch, unknown receiver): answered 422."""
    not_found: list[str] = msgspec.field(default_factory=lambda: ["404"])
    """No such document: answered 404."""
    auth: list[str] = msgspec.field(default_factory=lambda: ["401", "403"])
    """The province's credentials were refused."""


class Inbound(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How a received message is handed to an agency system (an ``http`` upstream's operation)."""

    document_operation: str = "/lgsp/edocs"
    status_operation: str = "/lgsp/edoc-statuses"
    verify_signatures: Literal["off", "if_present", "required"] = "off"
    """Check a received document's signatures against the gateway's ``trust`` anchors before
    handing it on (the result stays with its record); one that fails is marked ``fail`` on
    the axis with the reason. Needs the config's ``trust`` section (else every message is
    refused, so that nothing passes unchecked)."""


class DocumentAxisSettings(AdapterSettings, kw_only=True, forbid_unknown_fields=True):
    base_url: Annotated[
        str, msgspec.Meta(pattern=r"^https?://", description="an http:// or https:// URL")
    ]
    credentials: Credentials
    agencies: dict[OrganId, str] = {}
    """The province's agencies: OrganId -> the configured upstream of its document system.

    Their mailboxes are polled, and only they may send through this upstream.
    """
    service_type: str = "eDoc"
    paths: AxisPaths = msgspec.field(default_factory=AxisPaths)
    headers: AxisHeaders = msgspec.field(default_factory=AxisHeaders)
    error_codes: ErrorCodes = msgspec.field(default_factory=ErrorCodes)
    inbound: Inbound = msgspec.field(default_factory=Inbound)
    poll_interval: Duration = "30s"
    poll_timeout: Duration = "60s"
    """Deadline of each axis call the poller makes (a 20 MB download included)."""
    page_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    """Documents taken from one mailbox per poll."""
    tls: TlsSettings = msgspec.field(default_factory=TlsSettings)
    pool: PoolSettings = msgspec.field(default_factory=PoolSettings)
