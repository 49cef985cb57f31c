"""The edXML rules checked on typed values, for parsed XML and the JSON form alike.

The XSD says the same where it can; here the limits are configurable
(``EdxmlLimits``), dates are real dates, and every broken rule gets a stable
code (``errors``) and the path of the element it is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from enum import IntEnum

import msgspec

from schemas.edxml import errors
from schemas.edxml.codes import SMALL_INT_MAX, BussinessDocType, Priority, ReceiverType, StatusCode
from schemas.edxml.document import EdxmlDocument, content_key
from schemas.edxml.errors import EdxmlIssue
from schemas.edxml.formats import is_organ_id, parse_date, parse_document_id, parse_timestamp
from schemas.edxml.limits import DEFAULT_LIMITS, EdxmlLimits
from schemas.edxml.mapping import (
    ATTACHMENTS_PATH,
    MANIFEST_PATH,
    MESSAGE_HEADER_PATH,
    TRACE_PATH,
    leaves,
)
from schemas.edxml.models import (
    AttachmentInfo,
    MessageHeader,
    Organization,
    Reference,
    ResponseFor,
    StatusHeader,
    TraceHeaderList,
)

# Characters XML 1.0 cannot carry; a builder would fail on them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class _Checker:
    def __init__(self, limits: EdxmlLimits) -> None:
        self.limits = limits
        self.issues: list[EdxmlIssue] = []

    def add(self, path: str, rule: str, message: str) -> None:
        self.issues.append(EdxmlIssue(path, rule, message))

    def generic(self, value: msgspec.Struct, path: str) -> None:
        """Required texts present; texts XML can carry; numbers not negative."""
        for leaf_path, field, leaf in leaves(value, path):
            if field.kind == "int":
                if leaf < 0:
                    self.add(
                        leaf_path,
                        errors.BAD_INTEGER,
                        f"expected a non-negative integer, not {leaf}",
                    )
                continue
            if field.required and not leaf.strip():
                self.add(leaf_path, errors.MISSING_ELEMENT, f"{field.name} is required")
            elif _NOT_XML.search(leaf):
                self.add(leaf_path, errors.BAD_CHARACTER, "contains a control character")

    def length(self, path: str, value: str | None, limit: int) -> None:
        if value is not None and len(value) > limit:
            name = path.rsplit("/", 1)[-1].split("[")[0]
            self.add(
                path,
                errors.TOO_LONG,
                f"{name} has {len(value)} characters; at most {limit} are allowed",
            )

    def organ_id(self, path: str, value: str | None) -> None:
        if value and not is_organ_id(value):
            self.add(
                path,
                errors.BAD_ORGAN_ID,
                f"{value[:40]!r} is not an agency id like 000.00.11.H53 "
                "(three, two and two digits, then a capital letter and two digits)",
            )

    def document_id(self, path: str, value: str | None) -> None:
        if value is not None and parse_document_id(value) is None:
            self.add(
                path,
                errors.BAD_DOCUMENT_ID,
                f"{value[:80]!r} is not <OrganId>,<YYYY/MM/DD>,<Number>/<Notation> "
                "(e.g. 000.00.00.G22,2015/09/30,7816/VPCP-TTĐT)",
            )

    def date(self, path: str, value: str | None) -> None:
        if value is not None and parse_date(value) is None:
            self.add(
                path,
                errors.BAD_DATE,
                f"{value[:40]!r} is not a date YYYY/MM/DD (or DD/MM/YYYY, YYYY-MM-DD)",
            )

    def timestamp(self, path: str, value: str) -> None:
        if value and parse_timestamp(value) is None:
            self.add(
                path,
                errors.BAD_DATE,
                f"{value[:40]!r} is not a timestamp YYYY/MM/DD HH:mm:ss (or DD/MM/YYYY HH:mm:ss)",
            )

    def code(self, path: str, value: int | None, table: type[IntEnum]) -> None:
        if value is not None and value >= 0 and value not in table._value2member_map_:
            allowed = ", ".join(f"{m.value} {m.name.lower()}" for m in table)
            self.add(path, errors.BAD_CODE, f"{value} is not a {table.__name__} ({allowed})")

    def small(self, path: str, value: int | None) -> None:
        if value is not None and value > SMALL_INT_MAX:
            self.add(path, errors.BAD_CODE, f"expected a small integer (0-{SMALL_INT_MAX})")

    def organization(self, path: str, organization: Organization) -> None:
        self.organ_id(f"{path}/OrganId", organization.OrganId)

    def response_for(self, path: str, response: ResponseFor) -> None:
        self.organ_id(f"{path}/OrganId", response.OrganId)
        self.date(f"{path}/PromulgationDate", response.PromulgationDate)
        self.document_id(f"{path}/DocumentId", response.DocumentId)

    def header(self, header: MessageHeader) -> None:
        path = MESSAGE_HEADER_PATH
        limits = self.limits
        self.generic(header, path)
        self.organization(f"{path}/From", header.From)
        if not header.To:
            self.add(
                f"{path}/To", errors.MISSING_RECEIVER, "at least one receiver (To) is required"
            )
        first_seen: dict[str, int] = {}
        for index, receiver in enumerate(header.To, 1):
            self.organization(f"{path}/To[{index}]", receiver)
            organ_id = receiver.OrganId.strip()
            if organ_id and organ_id in first_seen:
                self.add(
                    f"{path}/To[{index}]/OrganId",
                    errors.DUPLICATE_RECEIVER,
                    f"receiver {organ_id} is already To[{first_seen[organ_id]}]",
                )
            first_seen.setdefault(organ_id, index)
        self.document_id(f"{path}/DocumentId", header.DocumentId)
        if header.PromulgationInfo is not None:
            info_path = f"{path}/PromulgationInfo"
            self.length(f"{info_path}/Place", header.PromulgationInfo.Place, limits.max_place_chars)
            self.date(f"{info_path}/PromulgationDate", header.PromulgationInfo.PromulgationDate)
        if header.DocumentType is not None:
            self.small(f"{path}/DocumentType/Type", header.DocumentType.Type)
            self.small(f"{path}/DocumentType/TypeDetail", header.DocumentType.TypeDetail)
        self.length(f"{path}/Subject", header.Subject, limits.max_subject_chars)
        self.length(f"{path}/Content", header.Content, limits.max_content_chars)
        self.date(f"{path}/DueDate", header.DueDate)
        if header.OtherInfo is not None:
            other = f"{path}/OtherInfo"
            self.code(f"{other}/Priority", header.OtherInfo.Priority, Priority)
            for index, appendix in enumerate(header.OtherInfo.Appendixes, 1):
                self.length(
                    f"{other}/Appendixes/Appendix[{index}]", appendix, limits.max_appendix_chars
                )
        self.small(f"{path}/SteeringType", header.SteeringType)
        for index, place in enumerate(header.ToPlaces, 1):
            self.length(f"{path}/ToPlaces/Place[{index}]", place, limits.max_place_chars)
        for index, response in enumerate(header.ResponseFor, 1):
            self.response_for(f"{path}/ResponseFor[{index}]", response)

    def trace(self, trace: TraceHeaderList | None) -> None:
        if trace is None:
            return
        path = TRACE_PATH
        self.generic(trace, path)
        for index, hop in enumerate(trace.TraceHeader, 1):
            self.organ_id(f"{path}/TraceHeader[{index}]/OrganId", hop.OrganId)
            self.timestamp(f"{path}/TraceHeader[{index}]/Timestamp", hop.Timestamp)
        business = trace.Bussiness
        if business is None:
            return
        path = f"{path}/Bussiness"
        self.code(f"{path}/BussinessDocType", business.BussinessDocType, BussinessDocType)
        info = business.BussinessDocumentInfo
        if info is not None:
            for index, receiver in enumerate(info.ReceiverList, 1):
                receiver_path = f"{path}/BussinessDocumentInfo/ReceiverList/Receiver[{index}]"
                self.organ_id(f"{receiver_path}/OrganId", receiver.OrganId)
                self.code(f"{receiver_path}/ReceiverType", receiver.ReceiverType, ReceiverType)
        for index, replacement in enumerate(business.ReplacementInfoList, 1):
            replacement_path = f"{path}/ReplacementInfoList/ReplacementInfo[{index}]"
            for number, organ_id in enumerate(replacement.OrganIdList, 1):
                self.organ_id(f"{replacement_path}/OrganIdList/OrganId[{number}]", organ_id)

    def manifest(
        self, manifest: Sequence[Reference], attachments: Sequence[AttachmentInfo]
    ) -> None:
        limit = self.limits.max_attachment_name_chars
        references = self._content_ids(
            (f"{MANIFEST_PATH}/Reference[{i}]", r.ContentId) for i, r in enumerate(manifest, 1)
        )
        carried = self._content_ids(
            (f"{ATTACHMENTS_PATH}/Attachment[{i}]", a.ContentId)
            for i, a in enumerate(attachments, 1)
        )
        for index, reference in enumerate(manifest, 1):
            path = f"{MANIFEST_PATH}/Reference[{index}]"
            self.generic(reference, path)
            self.length(f"{path}/AttachmentName", reference.AttachmentName, limit)
            key = content_key(reference.ContentId)
            if key and key not in carried:
                self.add(
                    f"{path}/ContentId",
                    errors.MISSING_ATTACHMENT,
                    f"the manifest lists {reference.ContentId}, which no attachment has",
                )
        for index, attachment in enumerate(attachments, 1):
            path = f"{ATTACHMENTS_PATH}/Attachment[{index}]"
            self.generic(attachment, path)
            self.length(f"{path}/AttachmentName", attachment.AttachmentName, limit)
            key = content_key(attachment.ContentId)
            if key and key not in references:
                self.add(
                    f"{path}/ContentId",
                    errors.UNREFERENCED_ATTACHMENT,
                    f"attachment {attachment.ContentId} is not listed in the manifest",
                )

    def _content_ids(self, entries: Iterable[tuple[str, str]]) -> set[str]:
        seen: dict[str, str] = {}
        for path, content_id in entries:
            key = content_key(content_id)
            if not key:
                continue
            if key in seen:
                self.add(
                    f"{path}/ContentId",
                    errors.DUPLICATE_CONTENT_ID,
                    f"ContentId {content_id} is already used at {seen[key]}",
                )
            else:
                seen[key] = path
        return set(seen)

    def status(self, status: StatusHeader) -> None:
        path = MESSAGE_HEADER_PATH
        self.generic(status, path)
        self.organization(f"{path}/From", status.From)
        self.response_for(f"{path}/ResponseFor", status.ResponseFor)
        if status.StatusCode.strip() and status.StatusCode not in StatusCode._value2member_map_:
            allowed = ", ".join(code.value for code in StatusCode)
            self.add(
                f"{path}/StatusCode",
                errors.BAD_CODE,
                f"{status.StatusCode[:10]!r} is not a status code ({allowed})",
            )
        self.timestamp(f"{path}/Timestamp", status.Timestamp)


def check_parts(
    header: MessageHeader,
    trace: TraceHeaderList | None,
    manifest: Sequence[Reference],
    attachments: Sequence[AttachmentInfo],
    limits: EdxmlLimits | None = None,
) -> list[EdxmlIssue]:
    """Every broken rule of a document message given as its parts."""
    checker = _Checker(limits or DEFAULT_LIMITS)
    checker.header(header)
    checker.trace(trace)
    checker.manifest(manifest, attachments)
    return checker.issues


def check(document: EdxmlDocument, *, limits: EdxmlLimits | None = None) -> list[EdxmlIssue]:
    """Every broken rule of a typed document (what ``build`` refuses); [] when valid."""
    return check_parts(
        document.header,
        document.trace_header_list,
        document.manifest,
        [a.info for a in document.attachments],
        limits,
    )


def check_status(
    status: StatusHeader, trace: TraceHeaderList | None = None, limits: EdxmlLimits | None = None
) -> list[EdxmlIssue]:
    """Every broken rule of a status message's header and trace."""
    checker = _Checker(limits or DEFAULT_LIMITS)
    checker.status(status)
    checker.trace(trace)
    return checker.issues


def merge(structural: list[EdxmlIssue], semantic: list[EdxmlIssue]) -> list[EdxmlIssue]:
    """Both lists, minus rule issues inside an element already reported as broken.

    A missing ``From`` is one issue, not also a missing ``From/OrganId``.
    """
    placeholders = [s.path for s in structural if s.rule == errors.MISSING_ELEMENT]
    merged = list(structural)
    for item in semantic:
        if not any(item.path == p or item.path.startswith(p + "/") for p in placeholders):
            merged.append(item)
    return merged
