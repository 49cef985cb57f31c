"""Digital-signature verification for edXML documents, PDFs and detached CMS signatures.

What is checked (path to a trusted anchor, validity at the signing time, revocation,
algorithms, what the signature covers), per concern:

========================  ===================================================================
``result``                verdicts, stable reason codes, messages in Vietnamese and English
``policy``                ``SignaturePolicy`` and ``TrustSettings`` (YAML Structs), algorithm rules
``trust``                 ``TrustStore``: anchors, intermediates, path building and its checks
``revocation``            ``RevocationChecker``: OCSP then CRL over httpx, verified, cached
``xmldsig``               enveloped XML-DSig on edXML (signxml)
``pades``                 PAdES / adbe.pkcs7.detached signatures in PDFs (pyHanko)
``cms``                   detached CMS/PKCS#7 over an attachment; the CMS core of PAdES
``timestamps``            RFC 3161 signature timestamps: the trusted signing time
``verifier``              dispatch and the per-signer assessment shared by all formats
``cli``                   ``lgsp-gateway verify`` and ``lgsp-gateway trust check``
========================  ===================================================================

Using it (one ``TrustStore`` and one ``RevocationChecker`` per configuration; both are safe
to share between concurrent requests)::

    trust = TrustStore.load(TrustSettings(anchors="trust/anchors"), base_dir=config_dir)
    revocation = RevocationChecker(trust.settings)
    result = await verify(body, "application/xml", policy=SignaturePolicy(mode="required"),
                          trust=trust, revocation=revocation)
    if not result.accepted:
        ...  # refuse; result.reasons say why, in both languages; result.summary() for a header
    document = result.signed_content  # read ONLY this: what the signature proved
    await revocation.aclose()         # when the configuration retires

``verify(data, media_type, *, policy, trust, revocation, now=None)`` takes an edXML
document (its XML-DSig, then each attachment: PAdES if a PDF, CMS if a ``.p7s`` detached
signature accompanies it) or a PDF, as bytes or a binary stream. It raises
``UnusableInput`` (``.code``: ``xml_forbidden``, ``malformed_body``,
``unsupported_media_type``) when the input cannot be judged at all; every other outcome is
a ``VerificationResult``:

- ``verdict``: ``valid`` / ``valid_with_warnings`` / ``invalid`` / ``unsigned`` (the
  document itself carries no signature; attachments may);
- ``accepted``: that verdict judged by the policy's ``mode``;
- ``reasons``: stable codes with severity and ``message_vi`` / ``message_en``;
- ``signer_subject``, ``signer_serial``, ``time_used`` and ``time_source``
  (``timestamp`` or ``verification_time``), ``signatures`` (one ``SignatureDetail`` each:
  chain, revocation answers, algorithms, PDF coverage and later modifications);
- ``signed_content``: what the verification proved signed (the canonical XML without the
  signature, or the signed PDF revision), only when the verdict is valid.

Attachments parsed elsewhere (``schemas.edxml``) go through
``verify_attachments(items, ...)``, where each item has ``name``, ``content_type`` and
``open()``. Trust anchors: see ``trust`` (none is trusted by default; a Vietnamese
deployment configures the Ban Cơ yếu Chính phủ root and the NEAC root).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.signatures.policy import SignaturePolicy, TrustSettings
    from gateway.signatures.result import (
        MESSAGES,
        CertificateInfo,
        Reason,
        RevocationInfo,
        SignatureDetail,
        VerificationResult,
    )
    from gateway.signatures.revocation import RevocationChecker
    from gateway.signatures.trust import TrustStore
    from gateway.signatures.verifier import (
        Attachment,
        AttachmentLike,
        UnusableInput,
        verify,
        verify_attachments,
        verify_detached,
        verify_edxml,
        verify_pdf,
    )

# Imported on first use: signxml and pyHanko take half a second to import, and every
# ``lgsp-gateway`` command (and the config model) would otherwise pay for it.
_WHERE = {
    "SignaturePolicy": "policy",
    "TrustSettings": "policy",
    "MESSAGES": "result",
    "CertificateInfo": "result",
    "Reason": "result",
    "RevocationInfo": "result",
    "SignatureDetail": "result",
    "VerificationResult": "result",
    "RevocationChecker": "revocation",
    "TrustStore": "trust",
    "Attachment": "verifier",
    "AttachmentLike": "verifier",
    "UnusableInput": "verifier",
    "verify": "verifier",
    "verify_attachments": "verifier",
    "verify_detached": "verifier",
    "verify_edxml": "verifier",
    "verify_pdf": "verifier",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"gateway.signatures.{_WHERE[name]}"), name)


__all__ = [
    "MESSAGES",
    "Attachment",
    "AttachmentLike",
    "CertificateInfo",
    "Reason",
    "RevocationChecker",
    "RevocationInfo",
    "SignatureDetail",
    "SignaturePolicy",
    "TrustSettings",
    "TrustStore",
    "UnusableInput",
    "VerificationResult",
    "verify",
    "verify_attachments",
    "verify_detached",
    "verify_edxml",
    "verify_pdf",
]
