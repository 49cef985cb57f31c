"""Enveloped XML-DSig on edXML (QCVN 102:2016), verified with signxml.

What is accepted, and why:

- SHA-1 (rsa-sha1, sha1 digests) is verified, not refused: many systems in service still
  sign with it. signxml refuses it by default, so it is allowed in the configuration and
  reported here as ``weak_algorithm`` (a warning, or an error under ``algorithms: strict``).
- The signature must cover the whole document: a reference to ``""`` (or to the root's
  ID) with the enveloped-signature transform. A signature over only a part is
  ``incomplete_coverage``: the application reads the whole document, so a partial signature
  is the opening of a signature-wrapping attack.
- Only what signxml returns as signed (the canonical XML of the document without its
  signature) is handed back as ``signed_content``; callers never re-read the input.
- A ``Signature`` element in the edXML namespace (or in none), a quirk seen in samples, is
  most likely an XML-DSig signature whose namespace declaration was lost after signing. It
  is verified as if it were in the XML-DSig namespace (the enveloped transform removes it
  either way, so the document digest does not depend on it); the result carries the
  warning ``nonstandard_namespace``. If it still does not verify, the error says so.
- The signer's certificate must be in ``KeyInfo/X509Data`` (signatures naming it only by
  issuer and serial cannot be checked: ``signer_certificate_missing``).
- One envelope signature per document; several are ``malformed_signature``.
- The signature sits where QCVN 102:2016 puts it: the last part of
  ``edXML/edXMLEnvelope/edXMLHeader``, after ``MessageHeader`` and ``TraceHeaderList``;
  anywhere else it is ``misplaced_signature``. The enveloped transform removes the whole
  ``Signature`` before digesting, so whatever hides inside it (a forged ``MessageHeader`` in
  a ``ds:Object``, read by any code that takes the first ``MessageHeader``) would never break
  the digest: edXML content inside the signature is ``signature_wrapping``, refused before
  any cryptography. XML that is not edXML at all is ``not_edxml``.
- A XAdES ``SignatureTimeStamp`` (RFC 3161 token over the canonical ``SignatureValue``), if
  the signer's software adds one, gives the trusted signing time, as in PAdES and CMS.

The XML is parsed with the same hardening as ``schemas.xmlsafe`` (no DTD, no entities, no
network), except that text nodes above libxml2's 10 MB default are allowed when the
document is that large: edXML carries attachments as base64 text.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import (
    InvalidCertificate,
    InvalidDigest,
    InvalidInput,
    InvalidSignature,
    SignXMLException,
)
from signxml.verifier import SignatureConfiguration, XMLVerifier

from gateway.signatures.cms import load_signed_data
from gateway.signatures.integrity import Integrity, TimestampEvidence
from gateway.signatures.result import Reason, reason
from gateway.signatures.trust import pick_signer
from schemas.xmlsafe import UnsafeXml

DS = "http://www.w3.org/2000/09/xmldsig#"
EDXML = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
C14N_DEFAULT = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
_HUGE = 9 * 1024 * 1024  # above this, allow libxml2's large text nodes (base64 attachments)

_CONFIG = SignatureConfiguration(
    require_x509=True,
    location=".//",
    expect_references=True,  # any number: coverage is judged below
    signature_methods=frozenset(SignatureMethod),
    digest_algorithms=frozenset(DigestAlgorithm),
    ignore_ambiguous_key_info=False,
)


def parser(size: int) -> etree.XMLParser:
    """``schemas.xmlsafe``'s settings, keeping processing instructions (they are signed)."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=size > _HUGE,
        remove_pis=False,
    )


def parse(body: bytes) -> etree._Element:
    """Parse untrusted XML: ``UnsafeXml`` for DTDs, ``etree.XMLSyntaxError`` for bad syntax."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise UnsafeXml("DOCTYPE and entity declarations are not accepted")
    root = etree.fromstring(body, parser(len(body)))
    if root.getroottree().docinfo.doctype:  # type: ignore[union-attr]
        raise UnsafeXml("DOCTYPE and entity declarations are not accepted")
    return root


def find_signatures(root: etree._Element) -> list[etree._Element]:
    """``Signature`` elements: XML-DSig ones, and look-alikes in the edXML namespace or none."""
    found = []
    for element in root.iter(f"{{{DS}}}Signature", f"{{{EDXML}}}Signature", "Signature"):
        if element.tag == f"{{{DS}}}Signature" or _looks_like_dsig(element):
            found.append(element)
    return found


def _looks_like_dsig(element: etree._Element) -> bool:
    namespace = etree.QName(element).namespace
    return element.find(f"{{{namespace}}}SignedInfo" if namespace else "SignedInfo") is not None


_HEADER_PARTS = frozenset({"MessageHeader", "TraceHeaderList"})
_DSIG_NAMES = frozenset(
    {
        "Signature", "SignedInfo", "CanonicalizationMethod", "SignatureMethod", "Reference",
        "Transforms", "Transform", "XPath", "DigestMethod", "DigestValue", "SignatureValue",
        "HMACOutputLength", "KeyInfo", "KeyName", "KeyValue", "DSAKeyValue", "RSAKeyValue",
        "Modulus", "Exponent", "P", "Q", "G", "Y", "J", "Seed", "PgenCounter", "RetrievalMethod",
        "X509Data", "X509IssuerSerial", "X509IssuerName", "X509SerialNumber", "X509SKI",
        "X509SubjectName", "X509Certificate", "X509CRL", "PGPData", "PGPKeyID", "PGPKeyPacket",
        "SPKIData", "SPKISexp", "MgmtData", "Object", "Manifest", "SignatureProperties",
        "SignatureProperty",
    }
)  # fmt: skip
"""XML-DSig's element names: what a Signature that lost its namespace may hold in edXML's."""
_EDXML_PARTS = frozenset(
    {"edXML", "edXMLEnvelope", "edXMLHeader", "edXMLBody", "edXMLManifest", "AttachmentEncoded"}
    | _HEADER_PARTS
)
"""edXML's structural names, refused inside a signature whatever namespace they claim."""


def placement(root: etree._Element, signature: etree._Element) -> list[Reason]:
    """Where the signature sits and what it holds: ``[]`` when as QCVN 102:2016 puts it."""
    if root.tag != f"{{{EDXML}}}edXML":
        return [reason("not_edxml", detail=f"the root element is {_describe(root)}")]
    found = []
    header = signature.getparent()
    envelope = header.getparent() if header is not None else None
    in_header = (
        header is not None
        and header.tag == f"{{{EDXML}}}edXMLHeader"
        and envelope is not None
        and envelope.tag == f"{{{EDXML}}}edXMLEnvelope"
        and envelope.getparent() is root
    )
    later = [
        etree.QName(e).localname
        for e in signature.itersiblings()
        if isinstance(e.tag, str) and etree.QName(e).localname in _HEADER_PARTS
    ]
    if not in_header or later:
        where = _path(signature) + (f", before {', '.join(later)}" if later else "")
        found.append(
            reason(
                "misplaced_signature",
                detail=f"Signature at {where}; expected as the last part of "
                "/edXML/edXMLEnvelope/edXMLHeader",
            )
        )
    own = etree.QName(signature).namespace
    smuggled = [
        e for e in signature.iterdescendants() if isinstance(e.tag, str) and _edxml_content(e, own)
    ]
    if smuggled:
        found.append(
            reason(
                "signature_wrapping",
                detail=f"{_path(smuggled[0])} is inside the Signature"
                + (f" (and {len(smuggled) - 1} more edXML elements)" if len(smuggled) > 1 else ""),
            )
        )
    return found


def _edxml_content(element: etree._Element, signature_namespace: str | None) -> bool:
    """An edXML element (or one named like edXML's structure) inside a signature."""
    name = etree.QName(element)
    if name.localname in _EDXML_PARTS:
        return True
    if name.namespace != EDXML:
        return False
    # A Signature in the edXML namespace (the lost-namespace quirk) holds XML-DSig names there.
    return signature_namespace != EDXML or name.localname not in _DSIG_NAMES


def _path(element: etree._Element) -> str:
    names = [etree.QName(e).localname for e in (element, *element.iterancestors())]
    return "/" + "/".join(reversed(names))


def _describe(element: etree._Element) -> str:
    name = etree.QName(element)
    return f"{name.localname} in namespace {name.namespace or '(none)'}"


@dataclass
class XmlCheck:
    integrity: Integrity
    signed_root: etree._Element | None = None
    """The signed content parsed (only when intact): read attachments from here."""


def check(
    body: bytes, root: etree._Element, signature: etree._Element, now: dt.datetime
) -> XmlCheck:
    """Integrity of the document's one envelope signature."""
    result = Integrity(kind="xmldsig", target="edXML" if root.tag == f"{{{EDXML}}}edXML" else "XML")
    misplaced = placement(root, signature)
    if misplaced:  # nothing to verify: what is signed is not what a reader of edXML reads
        result.reasons += misplaced
        return XmlCheck(result)
    document = body
    if signature.tag != f"{{{DS}}}Signature":
        result.reasons.append(
            reason(
                "nonstandard_namespace",
                "warning",
                f"Signature in namespace {etree.QName(signature).namespace or '(none)'}",
            )
        )
        document = _as_dsig(root, signature, len(body))
        root = parse(document)
        signature = find_signatures(root)[0]
    certs, problem = _certificates(signature)
    result.extra_certs = certs
    method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod")
    result.signature_algorithm = _short_algorithm(
        method.get("Algorithm", "") if method is not None else ""
    )
    result.digest_algorithms = [
        _short_algorithm(d.get("Algorithm", ""))
        for d in signature.iterfind(f"{{{DS}}}SignedInfo/{{{DS}}}Reference/{{{DS}}}DigestMethod")
    ]
    if problem:
        result.reasons.append(reason("malformed_signature", detail=problem))
        return XmlCheck(result)
    if not certs:
        result.reasons.append(
            reason("signer_certificate_missing", detail="no KeyInfo/X509Data/X509Certificate")
        )
        return XmlCheck(result)
    last_error: Exception | None = None
    for candidate in pick_signer(certs)[:4]:
        try:
            verified = XMLVerifier().verify(
                document,
                x509_cert=candidate,
                parser=parser(len(document)),
                expect_config=_config_at(candidate, now),
            )
        except (InvalidDigest, InvalidCertificate) as exc:  # subclasses of InvalidSignature
            # the key signed; the content changed since (or a certificate check of signxml's)
            result.signer = candidate
            last_error = exc
            break
        except InvalidSignature as exc:  # this key did not sign: try the next certificate
            if "references" in str(exc):
                last_error = exc
                break
            last_error = exc
            continue
        except (InvalidInput, SignXMLException, ValueError) as exc:
            result.signer = candidate
            last_error = exc
            break
        result.signer = candidate
        result.extra_certs = [c for c in certs if c is not candidate]
        results = verified if isinstance(verified, list) else [verified]
        references = signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
        whole = [
            r
            for ref, r in zip(references, results, strict=False)
            if _covers_document(ref.get("URI"), r.signed_xml, root)
        ]
        if not whole:
            uris = [ref.get("URI") for ref in references]
            result.reasons.append(
                reason("incomplete_coverage", detail=f"references {uris} do not cover the document")
            )
            return XmlCheck(result)
        result.signed_content = whole[0].signed_data
        result.timestamps, unreadable = _xades_timestamps(signature)
        result.reasons += [reason("timestamp_invalid", "warning", text) for text in unreadable]
        return XmlCheck(result, whole[0].signed_xml)
    result.reasons.append(_reason_for(last_error))
    if result.signer is None and certs:
        result.signer = pick_signer(certs)[0]
        result.extra_certs = [c for c in certs if c is not result.signer]
    return XmlCheck(result)


def _config_at(cert: x509.Certificate, now: dt.datetime) -> SignatureConfiguration:
    """signxml checks the certificate's dates itself; we judge validity (at the right time,
    with the right reason code) in ``trust``, so it is given a moment inside the window."""
    moment = min(max(now, cert.not_valid_before_utc), cert.not_valid_after_utc)
    return SignatureConfiguration(
        require_x509=_CONFIG.require_x509,
        location=_CONFIG.location,
        expect_references=_CONFIG.expect_references,
        signature_methods=_CONFIG.signature_methods,
        digest_algorithms=_CONFIG.digest_algorithms,
        ignore_ambiguous_key_info=_CONFIG.ignore_ambiguous_key_info,
        verification_time=moment,
    )


def _covers_document(uri: str | None, signed: etree._Element | None, root: etree._Element) -> bool:
    """The reference is the whole document: ``""`` or the root's own ID, and what signxml
    returns as signed is that root (not an element moved elsewhere)."""
    if signed is None or signed.tag != root.tag:
        return False
    if uri == "":
        return True
    root_ids = {root.get(name) for name in ("Id", "ID", "id")} - {None}
    return uri is not None and uri.startswith("#") and uri[1:] in root_ids


def _reason_for(error: Exception | None) -> Reason:
    text = str(error) if error else "no certificate verified the signature"
    if isinstance(error, InvalidDigest):
        return reason("digest_mismatch", detail=text)
    if isinstance(error, InvalidSignature):
        if "references" in text:
            return reason("malformed_signature", detail=text)
        return reason("bad_signature", detail=text)
    if isinstance(error, InvalidInput) and "different public keys" in text:
        return reason("bad_signature", detail=text)
    if isinstance(error, InvalidInput) and "forbidden" in text:
        return reason("unsupported_algorithm", detail=text)
    if isinstance(error, ValueError) and "is not a valid" in text:
        return reason("unsupported_algorithm", detail=text)
    return reason("malformed_signature", detail=text)


def _certificates(signature: etree._Element) -> tuple[list[x509.Certificate], str | None]:
    certs = []
    for element in signature.iterfind(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate"):
        try:
            der = base64.b64decode("".join((element.text or "").split()), validate=True)
            certs.append(x509.load_der_x509_certificate(der))
        except (binascii.Error, ValueError) as exc:
            return [], f"an X509Certificate is not a certificate: {exc}"
    return certs, None


def _short_algorithm(uri: str) -> str:
    """``http://www.w3.org/2001/04/xmldsig-more#rsa-sha256`` -> ``rsa-sha256``."""
    return uri.rsplit("#", 1)[-1] if uri else "unknown"


def _as_dsig(root: etree._Element, signature: etree._Element, size: int) -> bytes:
    """The document with ``signature`` rebuilt in the XML-DSig namespace (default prefix).

    Signers that lost the namespace almost always used .NET's default-namespace form
    ``<Signature xmlns="http://www.w3.org/2000/09/xmldsig#">``, which this reproduces.
    """
    document = etree.fromstring(etree.tostring(root), parser(size))
    old = next(
        e
        for e in document.iter(signature.tag)
        if e.getroottree().getpath(e) == signature.getroottree().getpath(signature)
    )
    new = _rebuild(old)
    parent = old.getparent()
    assert parent is not None  # the root is never the envelope signature of edXML
    new.tail = old.tail
    parent.replace(old, new)
    return etree.tostring(document)


def _rebuild(element: etree._Element, parent: etree._Element | None = None) -> etree._Element:
    """Copy ``element`` into the XML-DSig namespace; other namespaces' children stay as is."""
    namespace = etree.QName(element).namespace
    tag = f"{{{DS}}}{etree.QName(element).localname}"
    new = (
        etree.Element(tag, nsmap={None: DS})  # type: ignore[dict-item]
        if parent is None
        else etree.SubElement(parent, tag)
    )
    for name, value in element.attrib.items():
        new.set(name, value)
    new.text = element.text
    for child in element:
        if isinstance(child.tag, str) and etree.QName(child).namespace == namespace:
            _rebuild(child, new).tail = child.tail
        else:
            new.append(copy.deepcopy(child))
    return new


def canonical(element: etree._Element, algorithm: str) -> bytes:
    """``element`` canonicalised as a document subset (its in-scope namespaces included)."""
    exclusive = algorithm.startswith("http://www.w3.org/2001/10/xml-exc-c14n#")
    with_comments = algorithm.endswith("#WithComments")
    return etree.tostring(element, method="c14n", exclusive=exclusive, with_comments=with_comments)


def _xades_timestamps(signature: etree._Element) -> tuple[list[TimestampEvidence], list[str]]:
    """XAdES SignatureTimeStamp tokens (their imprint covers the canonical SignatureValue),
    and what could not be read."""
    value = signature.find(f"{{{DS}}}SignatureValue")
    found: list[TimestampEvidence] = []
    problems: list[str] = []
    if value is None:
        return found, problems
    for stamp in signature.iterfind(f".//{{{XADES}}}SignatureTimeStamp"):
        method = stamp.find(f"{{{DS}}}CanonicalizationMethod")
        algorithm = method.get("Algorithm", C14N_DEFAULT) if method is not None else C14N_DEFAULT
        for encapsulated in stamp.iterfind(f"{{{XADES}}}EncapsulatedTimeStamp"):
            try:
                der = base64.b64decode("".join((encapsulated.text or "").split()))
                token = load_signed_data(der)
            except (ValueError, TypeError, KeyError, binascii.Error) as exc:
                problems.append(f"unreadable XAdES SignatureTimeStamp: {exc}")
                continue
            found.append(TimestampEvidence(token=token, imprint_data=canonical(value, algorithm)))
    return found, problems
