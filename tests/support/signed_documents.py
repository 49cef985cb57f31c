"""Documents to verify, signed by the test PKI: edXML (signxml), PDF (pyHanko), detached CMS."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import io

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from lxml import etree
from signxml import XMLSigner
from signxml.algorithms import CanonicalizationMethod

from tests.support.signing_pki import Issued, key_pem, pem

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"


def edxml(
    subject: str = "V/v triển khai nền tảng tích hợp, chia sẻ dữ liệu",
    attachments: list[tuple[str, str, bytes]] | None = None,
    *,
    filler: int = 0,
) -> bytes:
    """An edXML document with a signature placeholder in its header (QCVN 102:2016)."""
    parts = []
    for index, (file_name, content_type, data) in enumerate(attachments or []):
        parts.append(
            f"<Attachment><ContentId>cid:{index}</ContentId>"
            f"<AttachmentName>{file_name}</AttachmentName><ContentType>{content_type}</ContentType>"
            f"<ContentTransferEncoded>{base64.b64encode(data).decode()}</ContentTransferEncoded>"
            "</Attachment>"
        )
    content = "x" * filler
    text = (
        f'<edXML xmlns="{EDXML_NS}"><edXMLEnvelope><edXMLHeader><MessageHeader>'
        "<From><OrganId>000.00.11.H53</OrganId><OrganName>UBND tỉnh (demo)</OrganName></From>"
        "<To><OrganId>000.00.00.G22</OrganId><OrganName>Văn phòng Chính phủ</OrganName></To>"
        "<DocumentId>000.00.11.H53,2026/11/22,1234/UBND-VP</DocumentId>"
        f"<Subject>{subject}</Subject><Content>{content}</Content>"
        "</MessageHeader>"
        f'<ds:Signature xmlns:ds="{DS_NS}" Id="placeholder"/>'
        '</edXMLHeader><edXMLBody><edXMLManifest version="1.0"/></edXMLBody></edXMLEnvelope>'
        f"<AttachmentEncoded>{''.join(parts)}</AttachmentEncoded></edXML>"
    )
    return text.encode()


class _Sha1Signer(XMLSigner):
    """signxml refuses SHA-1 unless told; our verifier must meet what Vietnamese systems send."""

    def check_deprecated_methods(self) -> None:
        pass


def sign_edxml(
    document: bytes,
    signer: Issued,
    *,
    algorithm: str = "rsa-sha256",
    digest: str = "sha256",
    chain: bool = True,
    default_namespace: bool = False,
) -> bytes:
    cls = _Sha1Signer if "sha1" in algorithm or digest == "sha1" else XMLSigner
    xml_signer = cls(
        signature_algorithm=algorithm,
        digest_algorithm=digest,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    xml_signer._parser = etree.XMLParser(huge_tree=True, resolve_entities=False)  # large tests
    if default_namespace:
        xml_signer.namespaces = {None: DS_NS}  # type: ignore[dict-item]
    certs = [pem(signer.cert).decode()]
    if chain:
        certs.append(pem(signer.issuer.cert).decode())
    root = etree.fromstring(document, etree.XMLParser(huge_tree=True))
    if default_namespace:  # a placeholder in the default-namespace form
        placeholder = root.find(f".//{{{DS_NS}}}Signature")
        assert placeholder is not None
        replacement = etree.Element(f"{{{DS_NS}}}Signature", nsmap={None: DS_NS})
        replacement.set("Id", "placeholder")
        placeholder.getparent().replace(placeholder, replacement)  # type: ignore[union-attr]
    signed = xml_signer.sign(root, key=key_pem(signer.key), cert=certs)
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def relocate_signature(signed: bytes, forged_subject: str = "Bản giả mạo") -> bytes:
    """The relocation attack: the untouched Signature moved to be the edXML root's first
    child, a forged ``edXMLEnvelope/edXMLHeader/MessageHeader`` hidden in its ``ds:Object``.

    The enveloped transform drops the whole Signature, so the digest still matches; a reader
    that takes the first MessageHeader of the document reads the forged one.
    """
    root = etree.fromstring(signed)
    signature = root.find(f".//{{{DS_NS}}}Signature")
    header = root.find(f".//{{{EDXML_NS}}}MessageHeader")
    assert signature is not None and header is not None
    signature.getparent().remove(signature)  # type: ignore[union-attr]
    forged = etree.SubElement(
        etree.SubElement(
            etree.SubElement(
                etree.SubElement(signature, f"{{{DS_NS}}}Object"), f"{{{EDXML_NS}}}edXMLEnvelope"
            ),
            f"{{{EDXML_NS}}}edXMLHeader",
        ),
        f"{{{EDXML_NS}}}MessageHeader",
    )
    forged.extend(copy.deepcopy(list(header)))
    subject = forged.find(f"{{{EDXML_NS}}}Subject")
    assert subject is not None
    subject.text = forged_subject
    root.insert(0, signature)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"


def add_xades_timestamp(signed: bytes, tsa: Issued, at: dt.datetime | None = None) -> bytes:
    """A XAdES SignatureTimeStamp (unsigned property) over the canonical SignatureValue."""
    from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    root = etree.fromstring(signed)
    signature = root.find(f".//{{{DS_NS}}}Signature")
    assert signature is not None
    value = signature.find(f"{{{DS_NS}}}SignatureValue")
    assert value is not None
    digest = hashes.Hash(hashes.SHA256())
    digest.update(etree.tostring(value, method="c14n"))
    chain = tsa.cert_file.with_suffix(".chain.pem")
    chain.write_bytes(pem(tsa.issuer.cert))
    stamper = DummyTimeStamper(
        load_cert_from_pemder(str(tsa.cert_file)),
        load_private_key_from_pemder(str(tsa.key_file), None),
        certs_to_embed=SimpleCertificateStore.from_certs([load_cert_from_pemder(str(chain))]),
        fixed_dt=at,
    )
    token = asyncio.run(stamper.async_timestamp(digest.finalize(), "sha256"))
    path = ["Object", "QualifyingProperties", "UnsignedProperties"]
    path += ["UnsignedSignatureProperties", "SignatureTimeStamp"]
    parent = signature
    for index, local in enumerate(path):
        parent = etree.SubElement(parent, f"{{{DS_NS if index == 0 else XADES_NS}}}{local}")
    etree.SubElement(parent, f"{{{DS_NS}}}CanonicalizationMethod").set(
        "Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    )
    encapsulated = etree.SubElement(parent, f"{{{XADES_NS}}}EncapsulatedTimeStamp")
    encapsulated.text = base64.b64encode(token.dump()).decode()
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def blank_pdf(text: str = "Quyet dinh so 1234") -> bytes:
    """A one-page PDF written with pyHanko's writer."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

    writer = PdfFileWriter()
    stream = generic.StreamObject(stream_data=f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
    box = generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, 595, 842)])
    writer.insert_page(PageObject(contents=writer.add_object(stream), media_box=box))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def sign_pdf(
    pdf: bytes,
    signer: Issued,
    *,
    tsa: Issued | None = None,
    timestamp_at: dt.datetime | None = None,
    field_name: str = "Signature1",
) -> bytes:
    from pyhanko.keys import load_cert_from_pemder, load_private_key_from_pemder
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    chain_file = signer.cert_file.with_suffix(".chain.pem")
    chain_file.write_bytes(pem(signer.issuer.cert))
    simple = signers.SimpleSigner.load(
        str(signer.key_file), str(signer.cert_file), ca_chain_files=[str(chain_file)]
    )
    timestamper = None
    if tsa is not None:
        timestamper = DummyTimeStamper(
            load_cert_from_pemder(str(tsa.cert_file)),
            load_private_key_from_pemder(str(tsa.key_file), None),
            certs_to_embed=SimpleCertificateStore.from_certs(
                [load_cert_from_pemder(str(chain_file))]
            ),
            fixed_dt=timestamp_at,
        )
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, subfilter=fields.SigSeedSubFilter.PADES
    )
    out = signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=simple, timestamper=timestamper
    )
    return bytes(out.getvalue())


def change_page(signed_pdf: bytes, text: str = "Forged") -> bytes:
    """An incremental update after signing that replaces the page's content."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(signed_pdf))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    stream = generic.StreamObject(stream_data=f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())
    page["/Contents"] = writer.add_object(stream)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def detached_cms(content: bytes, signer: Issued) -> bytes:
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(
            signer.cert,
            signer.key,  # type: ignore[arg-type]
            hashes.SHA256(),
        )
        .add_certificate(signer.issuer.cert)
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )
