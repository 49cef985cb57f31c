"""Status messages: what a receiver answers about a document (arrived, received, done...).

Same envelope as a document; the MessageHeader holds From, ResponseFor,
StaffInfo, StatusCode, Description and Timestamp (``models.StatusHeader``),
and there are no attachments. ``build_status`` is in ``builder``.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import msgspec

from schemas.edxml import errors, rules
from schemas.edxml.codes import StatusCode
from schemas.edxml.document import EdxmlDocument
from schemas.edxml.errors import EdxmlIssue
from schemas.edxml.formats import VIETNAM, format_timestamp
from schemas.edxml.limits import DEFAULT_LIMITS, EdxmlLimits
from schemas.edxml.models import Organization, ResponseFor, StaffInfo, StatusHeader, TraceHeader
from schemas.edxml.parser import Source, read_parts


class StatusMessage(msgspec.Struct, kw_only=True):
    """A parsed status message."""

    header: StatusHeader
    trace: list[TraceHeader] = []
    signature_xml: bytes | None = None
    issues: list[EdxmlIssue] = []
    """Empty unless parsed with ``strict=False``."""

    @property
    def signature_present(self) -> bool:
        return self.signature_xml is not None

    @property
    def status(self) -> StatusCode | None:
        """The status code as the enum, None if it is not one of the table."""
        return StatusCode._value2member_map_.get(self.header.StatusCode)  # type: ignore[return-value]


def _read(source: Source, limits: EdxmlLimits) -> tuple[StatusMessage, list[EdxmlIssue]]:
    parts = read_parts(source, StatusHeader, limits=limits, with_attachments=False, keep=False)
    header = cast(StatusHeader, parts.header)
    issues = rules.merge(parts.issues, rules.check_status(header, parts.trace, limits))
    message = StatusMessage(
        header=header,
        trace=parts.trace.TraceHeader if parts.trace else [],
        signature_xml=parts.signature_xml,
        issues=issues,
    )
    return message, issues


def parse_status(
    source: Source, *, limits: EdxmlLimits | None = None, strict: bool = True
) -> StatusMessage:
    """Read a status message; raises like ``parse`` (``EdxmlInvalid`` when ``strict``)."""
    message, issues = _read(source, limits or DEFAULT_LIMITS)
    if strict and issues:
        raise errors.EdxmlInvalid(issues)
    return message


def validate_status(source: Source, *, limits: EdxmlLimits | None = None) -> list[EdxmlIssue]:
    """Every broken rule of a status message; [] when valid. Raises only for unreadable input."""
    return _read(source, limits or DEFAULT_LIMITS)[1]


def status_reply(
    document: EdxmlDocument,
    code: StatusCode | str,
    *,
    sender: Organization,
    description: str | None = None,
    staff: StaffInfo | None = None,
    at: datetime | None = None,
) -> StatusHeader:
    """The status header a receiver (``sender``) sends about a received ``document``.

    ResponseFor names the document as its sender wrote it; the description
    defaults to the code's Vietnamese meaning; the time to now, Vietnam time.
    """
    code = StatusCode(code)
    header = document.header
    number = header.Code.CodeNumber if header.Code else None
    notation = header.Code.CodeNotation if header.Code else None
    document_code = "/".join(part for part in (number, notation) if part) or None
    promulgation = header.PromulgationInfo.PromulgationDate if header.PromulgationInfo else None
    return StatusHeader(
        From=sender,
        ResponseFor=ResponseFor(
            OrganId=header.From.OrganId,
            Code=document_code,
            PromulgationDate=promulgation,
            DocumentId=header.DocumentId,
        ),
        StaffInfo=staff,
        StatusCode=code.value,
        Description=description if description is not None else code.meaning_vi,
        Timestamp=format_timestamp(at or datetime.now(VIETNAM)),
    )
