"""The edXML header as typed Structs, with the standard's own element names.

Field names are the element names (``From``, ``OrganId``, ``Bussiness`` with
its historical spelling), so code reads like the standard and the JSON form
is the XML's shape. Field order is the element order we write. Leaf values
are strings as written, except dates and timestamps (``Date``, ``Timestamp``),
which the parser and builder put in the canonical form when they are in one
of the forms in service: ``rules`` checks them, ``formats`` reads them.

A list field is either a repeated element (``To``: one ``<To>`` per item) or a
wrapper holding items (``ToPlaces`` holds ``<Place>``); ``WRAPPED_ITEMS`` says
which. Optional elements are None when absent; a required text that is absent
reads as "" so that a broken message still maps, and ``rules`` reports it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

# Documented value shapes (for the JSON form's OpenAPI); ``rules`` enforces them, with
# rule codes, so they carry no msgspec pattern.
OrganId = Annotated[
    str,
    msgspec.Meta(
        description="agency id: three, two, two digits, a capital letter and two digits",
        examples=["000.00.11.H53", "000.00.00.G22"],
    ),
]
DocumentId = Annotated[
    str,
    msgspec.Meta(
        description="<OrganId>,<YYYY/MM/DD>,<Number>/<Notation>",
        examples=["000.00.00.G22,2015/09/30,7816/VPCP-TTĐT"],
    ),
]
Date = Annotated[
    str,
    msgspec.Meta(
        description="YYYY/MM/DD (DD/MM/YYYY and YYYY-MM-DD are read too, and written YYYY/MM/DD)",
        examples=["2026/11/20"],
        extra={"edxml_format": "date"},
    ),
]
Timestamp = Annotated[
    str,
    msgspec.Meta(
        description="YYYY/MM/DD HH:mm:ss, Vietnam time (DD/MM/YYYY HH:mm:ss is read too)",
        examples=["2026/11/20 15:42:07"],
        extra={"edxml_format": "timestamp"},
    ),
]

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
XLINK_NS = "http://www.w3.org/1999/xlink"

WRAPPED_ITEMS = {
    "ToPlaces": "Place",
    "Appendixes": "Appendix",
    "ReceiverList": "Receiver",
    "ReplacementInfoList": "ReplacementInfo",
    "OrganIdList": "OrganId",
}
"""List fields written as a wrapper element around items of this name."""


class Element(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every edXML Struct: unknown JSON keys refused, defaults left out of JSON.

    (``kw_only`` is not inherited: a subclass with a required field after an
    optional one says it again.)
    """


class Organization(Element):
    """An agency: the sender (From) or a receiver (To)."""

    OrganId: OrganId
    OrganizationInCharge: str | None = None
    OrganName: str | None = None
    OrganAdd: str | None = None
    Email: str | None = None
    Telephone: str | None = None
    Fax: str | None = None
    Website: str | None = None


class Code(Element):
    """The document's number and notation (số, ký hiệu): 7816 and VPCP-TTĐT."""

    CodeNumber: str | None = None
    CodeNotation: str | None = None


class PromulgationInfo(Element):
    Place: str | None = None
    PromulgationDate: Date | None = None
    """``YYYY/MM/DD`` or ``DD/MM/YYYY``: both are in use."""


class DocumentType(Element):
    Type: int | None = None
    """Sources disagree on the numbers (1 or 18 for Công văn): any small integer."""
    TypeDetail: int | None = None
    TypeName: str | None = None


class SignerInfo(Element):
    Competence: str | None = None
    Position: str | None = None
    FullName: str | None = None


class OtherInfo(Element):
    Priority: int | None = None
    """0 normal, 1 urgent, 2 very urgent, 3 express, 4 express at a set time."""
    SphereOfPromulgation: str | None = None
    TyperNotation: str | None = None
    PromulgationAmount: int | None = None
    PageAmount: int | None = None
    Direction: str | None = None
    Appendixes: list[str] = []


class ResponseFor(Element):
    """The document a reply (or a status message) answers."""

    OrganId: OrganId
    Code: str | None = None
    PromulgationDate: Date | None = None
    DocumentId: DocumentId | None = None


class MessageHeader(Element):
    """The header of a document message."""

    From: Organization
    To: list[Organization] = []
    DocumentId: DocumentId | None = None
    """``<OrganId>,<YYYY/MM/DD>,<Number>/<Notation>``."""
    Code: Code | None = None
    PromulgationInfo: PromulgationInfo | None = None
    DocumentType: DocumentType | None = None
    Subject: str | None = None
    Content: str | None = None
    SignerInfo: SignerInfo | None = None
    DueDate: Date | None = None
    OtherInfo: OtherInfo | None = None
    SteeringType: int | None = None
    """Sources disagree (0 or 1 for "not steering"): any small integer."""
    ToPlaces: list[str] = []
    ResponseFor: list[ResponseFor] = []


class TraceHeader(Element):
    """One hop the message went through."""

    OrganId: OrganId
    Timestamp: Timestamp
    """``YYYY/MM/DD HH:mm:ss``."""


class StaffInfo(Element):
    Department: str | None = None
    Staff: str | None = None
    Email: str | None = None
    Mobile: str | None = None


class Receiver(Element):
    OrganId: OrganId
    ReceiverType: int | None = None
    """0 receiver removed, 1 receiver added."""


class BussinessDocumentInfo(Element):
    DocumentInfo: int | None = None
    DocumentReceiver: int | None = None
    ReceiverList: list[Receiver] = []


class ReplacementInfo(Element):
    DocumentId: str
    OrganIdList: list[str] = []


class Bussiness(Element):
    """What the message does to a document: new, recall, update, replace (sic: Bussiness)."""

    DocumentId: str | None = None
    BussinessDocType: int | None = None
    """0 new, 1 recall, 2 update, 3 replace."""
    BussinessDocReason: str | None = None
    Paper: int | None = None
    StaffInfo: StaffInfo | None = None
    BussinessDocumentInfo: BussinessDocumentInfo | None = None
    ReplacementInfoList: list[ReplacementInfo] = []


class TraceHeaderList(Element):
    TraceHeader: list[TraceHeader] = []
    Bussiness: Bussiness | None = None


class Reference(Element):
    """A manifest entry: one attachment the message carries."""

    ContentId: str
    """``cid:...``; matched to an Attachment's ContentId with or without ``cid:``."""
    ContentType: str | None = None
    Description: str | None = None
    AttachmentName: str | None = None


class AttachmentInfo(Element):
    """An Attachment element's metadata (its content is streamed, not held)."""

    ContentId: str
    AttachmentName: str | None = None
    Description: str | None = None
    ContentType: str | None = None


class StatusHeader(Element, kw_only=True):
    """The MessageHeader of a status message."""

    From: Organization
    ResponseFor: ResponseFor
    StaffInfo: StaffInfo | None = None
    StatusCode: str
    """Two digits from the status table (``codes.StatusCode``)."""
    Description: str | None = None
    Timestamp: Timestamp
    """``YYYY/MM/DD HH:mm:ss``."""
