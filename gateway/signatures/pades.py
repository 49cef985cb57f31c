"""PAdES (and older adbe.pkcs7.detached) signatures in PDF files, with pyHanko.

For each signature: the byte range must cover the whole file except the signature value
(``entire_file``), or the whole revision it signed (``entire_revision``) followed by
incremental updates that pyHanko's difference analysis explains. What those updates changed
is reported: validation data and timestamps are fine; form filling and annotations are a
``modified_after_signing`` warning (a later signature filling its own field is not);
anything else is a ``modified_after_signing`` error. A byte range that does not start at 0
or leaves a gap other than the signature is ``incomplete_coverage``.

Document timestamps (``/DocTimeStamp``) are not used as a trusted time for earlier
signatures; only each signature's own signature-timestamp token is.
"""

from __future__ import annotations

import io
import logging
from typing import Any

from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, ModificationLevel
from pyhanko.sign.general import CMSStructuralError
from pyhanko.sign.validation.errors import SignatureValidationError as PdfSignatureError
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import SignatureCoverageLevel

from gateway.signatures.cms import signer_integrity
from gateway.signatures.integrity import Integrity
from gateway.signatures.result import reason

# pyHanko logs a traceback for every suspicious update; the finding is in our result already.
logging.getLogger("pyhanko.sign.diff_analysis").setLevel(logging.ERROR)

_SUPPORTED_SUBFILTERS = {"/adbe.pkcs7.detached", "/ETSI.CAdES.detached"}


class UnreadablePdf(ValueError):
    pass


def check_pdf(data: bytes) -> list[Integrity]:
    """Each regular signature of a PDF, in signing order; ``[]`` when it has none."""
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if reader.encrypted:
            raise UnreadablePdf("the PDF is encrypted; its signatures cannot be read")
        signatures = reader.embedded_regular_signatures
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        if isinstance(exc, UnreadablePdf):
            raise
        raise UnreadablePdf(f"not a readable PDF: {exc}") from None
    names = {str(s.field_name) for s in signatures}
    return [_check_one(data, signature, names) for signature in signatures]


def _check_one(data: bytes, signature: EmbeddedPdfSignature, all_fields: set[str]) -> Integrity:
    target = f"PDF signature field {signature.field_name}"
    subfilter = str(signature.sig_object.get("/SubFilter", ""))
    if subfilter not in _SUPPORTED_SUBFILTERS:
        broken = Integrity(kind="pades", target=target)
        broken.reasons.append(
            reason("unsupported_algorithm", detail=f"PDF signature SubFilter {subfilter or 'none'}")
        )
        return broken
    try:
        signature.compute_integrity_info(diff_policy=DEFAULT_DIFF_POLICY)  # type: ignore[no-untyped-call]
    except (PdfError, PdfSignatureError, CMSStructuralError, ValueError, KeyError) as exc:
        broken = Integrity(kind="pades", target=target)
        broken.reasons.append(reason("malformed_signature", detail=str(exc)))
        return broken
    result = signer_integrity(
        signature.signed_data,
        signature.signer_info,
        signature.compute_digest,
        kind="pades",
        target=target,
    )
    if result.claimed_time is None:
        result.claimed_time = signature.self_reported_timestamp
    coverage = signature.coverage
    result.coverage = coverage.name.lower() if coverage is not None else "unclear"
    if coverage is None or coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        result.reasons.append(
            reason(
                "incomplete_coverage",
                detail=f"byte range {list(signature.byte_range)} ({result.coverage})",
            )
        )
        return result
    byte_range: Any = signature.byte_range
    end = int(byte_range[2]) + int(byte_range[3])
    if coverage == SignatureCoverageLevel.ENTIRE_FILE:
        result.modifications = "none: the signature covers the whole file"
    else:
        _judge_updates(result, signature, all_fields)
    result.signed_content = data[:end]
    return result


def _judge_updates(
    result: Integrity, signature: EmbeddedPdfSignature, all_fields: set[str]
) -> None:
    diff = signature.diff_result
    docmdp = signature.docmdp_level
    if not isinstance(diff, DiffResult):  # a SuspiciousModification: unexplained changes
        text = str(diff).splitlines()[0] if diff is not None else "unexplained changes"
        result.modifications = f"changes after signing that are not allowed: {text}"
        result.reasons.append(reason("modified_after_signing", "error", text))
        return
    level = diff.modification_level
    changed = sorted(str(f) for f in diff.changed_form_fields)
    if docmdp is not None and level.value > docmdp.value:
        result.modifications = f"{level.name.lower()} after signing, beyond the DocMDP permission"
        result.reasons.append(
            reason("modified_after_signing", "error", f"{level.name.lower()} exceeds {docmdp.name}")
        )
        return
    if level == ModificationLevel.NONE:
        what = "bytes after the signed revision, changing nothing in the document"
        result.modifications = what
        result.reasons.append(reason("modified_after_signing", "warning", what))
        return
    if level == ModificationLevel.LTA_UPDATES:
        result.modifications = "later updates add only validation data or timestamps"
        return
    if level == ModificationLevel.FORM_FILLING and changed and set(changed) <= all_fields:
        result.modifications = "later updates add the signature(s): " + ", ".join(changed)
        return
    what = (
        "form fields filled: " + ", ".join(changed)
        if level == ModificationLevel.FORM_FILLING
        else "annotations added or changed"
        if level == ModificationLevel.ANNOTATIONS
        else level.name.lower()
    )
    result.modifications = what
    result.reasons.append(reason("modified_after_signing", "warning", what))
