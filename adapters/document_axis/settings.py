"""What a ``type: document_axis`` upstream is configured with.

No axis server code is public: the defaults are what VNPT's Java SDK sends
(and Bkav's and TLTV's integrations, built on it, agree), read from its code;
paths, header names, message types, hash form and error codes can all be
changed in YAML (``protocol:``, ``paths:``, ``error_codes:``) without code.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from adapters.base import AdapterSettings, ConfiguredNames
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
"""The kinds of message as the gateway's routes and agency systems see them (``messageType``,
``X-LGSP-Message-Type``); the axis's own words for them are ``AxisProtocol.message_types``."""


class AxisPaths(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Where each axis operation lives, relative to ``base_url`` (the SDK's paths)."""

    send_edoc: str = "/sendEdoc"
    get_received_edoc_list: str = "/getReceivedEdocList"
    get_sent_edoc_list: str = "/getSentEdocList"
    get_edoc: str = "/getEdoc"
    update_status: str = "/updateStatus"


class AxisHeaders(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Names of the entries of the signed header map (each sent as ``<prefix><name>``).

    The defaults are the names VNPT's SDK puts in its map; Bkav's and TLTV's
    integrations use the same. ``update_doc_id`` is ``docid`` (Bkav) where
    ``get_doc_id`` is ``docId`` (SDK example): HTTP header names are
    case-insensitive, but the names go into the signed JSON as written.
    """

    system_id: str = "systemid"
    timestamp: str = "timestamp"
    content_type: str = "Content-Type"
    sender: str = "from"
    """The sending agency (``sendEdoc``): the edXML From/OrganId."""
    service_type: str = "servicetype"
    message_type: str = "messagetype"
    hash: str = "hash-file"
    """SHA-256 hex of the edXML sent (``sendEdoc``)."""
    get_doc_id: str = "docId"
    """The document to download (``getEdoc``)."""
    update_doc_id: str = "docid"
    """The document whose state is set (``updateStatus``)."""
    status: str = "status"
    """The state set by ``updateStatus``: ``processing``, ``done`` or ``fail``."""
    status_desc: str = "status_desc"
    """Why, sent with ``updateStatus`` when there is a reason (a ``fail``); ``""`` never sends
    it. The SDK has no such entry: an assumption, from the ``status_desc`` of list items."""


class MessageTypes(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The axis's ``messagetype`` values (the SDK's enum ``MessageType``)."""

    document: str = "edoc"
    status: str = "status"


class AxisProtocol(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """How this axis wants to be spoken to; the defaults are VNPT's Java SDK (``JAVA_SDK_VXP``).

    Every call sends the header map signed as the SDK signs it: each entry as
    ``<prefix><name>``, ``<prefix>sign-header`` = the compact JSON of those
    headers, ``<prefix>sign-header-key`` = their names joined by ``;``,
    ``<prefix>hash-header`` = lowercase hex HMAC-SHA256 of the JSON keyed with
    the secret (never sent). Change a value here for an axis (or a vendor's
    build of it) known to differ; what is still an assumption is listed in
    ``adapters/document_axis/__init__.py``.
    """

    header_prefix: str = "XroadVnpt-"
    version: str = "3.0.201608"
    """Sent as ``<prefix>version`` (not signed)."""
    user_agent: str = "JAVASDKAgent/1.0.0 XRoad/VPCP"
    service_type: str = "eDoc"
    message_types: MessageTypes = msgspec.field(default_factory=MessageTypes)
    headers: AxisHeaders = msgspec.field(default_factory=AxisHeaders)
    hash_file: Literal["unpadded", "padded"] = "unpadded"
    """How ``hash-file`` is written: the SDK's ``Integer.toHexString`` per byte drops leading
    zeros (``unpadded``, 57 to 64 characters); ``padded`` is the usual 64. Both are accepted
    when the gateway checks one."""
    body_trailer: Literal["crlf", "none"] = "crlf"
    """The SDK appends CRLF after the edXML it uploads (not hashed); ``none`` sends the bytes
    alone."""
    send_answer_doc_id: str = "DocId"
    """The key of the new document's id in the ``sendEdoc`` answer (top level)."""


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


class Agency(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One agency of the province's directory (the "connected units" integrators list).

    It receives documents pushed to its document system (``upstream``, a configured
    upstream) or, without one, held in its mailbox here for it to pull.
    """

    name: str = ""
    level: Literal["province", "department", "district", "commune"] = "department"
    parent: OrganId | None = None
    """The agency above it (a department's People's Committee); must be in the directory."""
    upstream: str = ""
    """The upstream of its document system; ``""``: it pulls from its mailbox."""
    clients: list[str] = []
    """The clients that may act for it (send as it, read and settle its mailbox); empty:
    any client the route allows."""


class DocumentAxisSettings(AdapterSettings, kw_only=True, forbid_unknown_fields=True):
    base_url: Annotated[
        str, msgspec.Meta(pattern=r"^https?://", description="an http:// or https:// URL")
    ]
    credentials: Credentials
    agencies: dict[OrganId, str | Agency] = {}
    """The province's agencies: OrganId -> an ``Agency``, or just the upstream of its system.

    The account's mailbox (one for the whole ``system_id``) is polled for the
    items whose ``to`` is one of them, and only they may send through this upstream.
    Documents between them never leave the province (see ``local``).
    """
    protocol: AxisProtocol = msgspec.field(default_factory=AxisProtocol)
    paths: AxisPaths = msgspec.field(default_factory=AxisPaths)
    error_codes: ErrorCodes = msgspec.field(default_factory=ErrorCodes)
    inbound: Inbound = msgspec.field(default_factory=Inbound)
    poll_interval: Duration = "30s"
    poll_timeout: Duration = "60s"
    """Deadline of each axis call the poller makes (a 20 MB download included)."""
    page_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 50
    """Messages of each kind (documents, statuses) taken from the mailbox per poll; the default
    ``limit`` of the list operations."""
    retention: Duration = "90d"
    """How long the record of a document sent through the province's own axis (where each
    leg went, what each receiver answered) and a settled (``done``, ``fail``) mailbox item
    are kept after they last changed. An item not yet settled is kept until it is."""
    tls: TlsSettings = msgspec.field(default_factory=TlsSettings)
    pool: PoolSettings = msgspec.field(default_factory=PoolSettings)

    def directory(self) -> dict[str, Agency]:
        """Every agency in its long form (the short form names only its upstream)."""
        return {
            organ_id: agency if isinstance(agency, Agency) else Agency(upstream=agency)
            for organ_id, agency in self.agencies.items()
        }

    def issues(self, names: ConfiguredNames) -> list[tuple[tuple[str | int, ...], str]]:
        """Each agency's system must be a configured upstream, its parent a listed agency,
        its clients configured clients."""
        found: list[tuple[tuple[str | int, ...], str]] = []
        for organ_id, raw in self.agencies.items():
            if isinstance(raw, str):
                if raw not in names.upstreams:
                    found.append((("agencies", organ_id), "no such upstream"))
                continue
            if raw.upstream and raw.upstream not in names.upstreams:
                found.append((("agencies", organ_id, "upstream"), "no such upstream"))
            if raw.parent is not None and raw.parent not in self.agencies:
                found.append((("agencies", organ_id, "parent"), "not an agency of the directory"))
            for i, client in enumerate(raw.clients):
                if client not in names.clients:
                    found.append((("agencies", organ_id, "clients", i), "no such client"))
        return found
