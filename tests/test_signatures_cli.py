"""``lgsp-gateway verify`` and ``trust check``: reports, JSON, exit codes, diagnosis."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

import pytest

from gateway.signatures.cli import add_commands, run_trust_check, run_verify
from tests.support.signed_documents import (
    blank_pdf,
    detached_cms,
    edxml,
    relocate_signature,
    sign_edxml,
    sign_pdf,
)
from tests.support.signing_pki import Signers, SigningPKI


def _verify(pki: SigningPKI, path: Path, **options: object) -> tuple[int, str]:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = run_verify(str(path), trust_dir=str(pki.anchors), timeout="2s", **options)  # type: ignore[arg-type]
    return code, out.getvalue()


def test_verify_exit_codes(tmp_path: Path, signing_pki: SigningPKI, signers: Signers) -> None:
    good = tmp_path / "good.edxml"
    good.write_bytes(sign_edxml(edxml(), signers.good))
    code, text = _verify(signing_pki, good)
    assert code == 0 and "HỢP LỆ" in text and "Nguyễn Văn An" in text

    weak = tmp_path / "weak.edxml"
    weak.write_bytes(sign_edxml(edxml(), signers.good, algorithm="rsa-sha1", digest="sha1"))
    code, text = _verify(signing_pki, weak, lang="en")
    assert code == 0 and "VALID WITH WARNINGS" in text and "weak_algorithm" in text
    assert _verify(signing_pki, weak, policy_text="algorithms=strict")[0] == 1

    tampered = tmp_path / "tampered.edxml"
    tampered.write_bytes(good.read_bytes().replace(b"1234/UBND-VP", b"4321/UBND-VP"))
    code, text = _verify(signing_pki, tampered)
    assert code == 1 and "digest_mismatch" in text and "Nội dung đã bị thay đổi" in text

    unsigned = tmp_path / "unsigned.edxml"
    unsigned.write_bytes(
        edxml().replace(b'Id="placeholder"/>', b'Id="x"/>').split(b"<ds:Signature")[0]
        + b"</edXMLHeader></edXMLEnvelope></edXML>"
    )
    code, text = _verify(signing_pki, unsigned)
    assert code == 1 and "KHÔNG CÓ CHỮ KÝ" in text

    hostile = tmp_path / "hostile.edxml"
    hostile.write_bytes(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    assert _verify(signing_pki, hostile)[0] == 2
    assert _verify(signing_pki, tmp_path / "missing.edxml")[0] == 2
    assert _verify(signing_pki, good, policy_text="revocation=sometimes")[0] == 2
    assert run_verify(str(good), trust_dir=str(tmp_path / "no-such-dir")) == 2


def test_verify_json_pdf_and_detached(
    tmp_path: Path, signing_pki: SigningPKI, signers: Signers
) -> None:
    pdf = tmp_path / "quyet-dinh.pdf"
    pdf.write_bytes(sign_pdf(blank_pdf(), signers.good, tsa=signers.tsa))
    code, text = _verify(signing_pki, pdf, as_json=True)
    data = json.loads(text)
    assert code == 0 and data["verdict"] == "valid" and data["time_source"] == "timestamp"
    assert "signed_content" not in data
    assert data["signatures"][0]["kind"] == "pades"

    content = tmp_path / "phu-luc.docx"
    content.write_bytes(b"PK\x03\x04 phu luc")
    signature = tmp_path / "phu-luc.docx.p7s"
    signature.write_bytes(detached_cms(content.read_bytes(), signers.good))
    code, text = _verify(signing_pki, content, signature=str(signature), lang="en")
    assert code == 0, text
    content.write_bytes(b"PK\x03\x04 phu luc da sua")
    assert _verify(signing_pki, content, signature=str(signature))[0] == 1


def test_commands_are_wired_through_argparse(
    tmp_path: Path, signing_pki: SigningPKI, signers: Signers, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="lgsp-gateway")
    add_commands(parser.add_subparsers(required=True))
    good = tmp_path / "good.edxml"
    good.write_bytes(sign_edxml(edxml(), signers.good))
    args = parser.parse_args(["verify", str(good), "--trust", str(signing_pki.anchors), "--json"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "valid"
    args = parser.parse_args(["trust", "check", "--trust", str(signing_pki.anchors)])
    assert args.func(args) == 0
    assert "LGSP Test Root" in capsys.readouterr().out


def _trust_check(pki: SigningPKI, cert: Path | None, **options: object) -> tuple[int, str]:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = run_trust_check(
            str(cert) if cert else None,
            trust_dir=str(pki.anchors),
            intermediates=str(pki.intermediates),
            timeout="2s",
            **options,  # type: ignore[arg-type]
        )
    return code, out.getvalue()


def test_trust_check_lists_anchors_and_diagnoses_a_good_certificate(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    code, text = _trust_check(signing_pki, signers.good.cert_file)
    assert code == 0, text
    assert "Trust anchors in" in text and "[OK] CN=LGSP Test Root" in text
    assert (
        "1. CN=Nguyễn Văn An" in text
        and "3. CN=LGSP Test Root,O=LGSP Test,C=VN [trust anchor]" in text
    )
    assert "[OK  ] CN=Nguyễn Văn An,O=LGSP Test,C=VN: keyUsage allows digitalSignature" in text
    assert "OCSP http://127.0.0.1" in text and "reachable, answered 'good'" in text
    assert "CRL  http://127.0.0.1" in text
    assert "Conclusion: usable for signing" in text


def test_trust_check_explains_unreachable_and_untrusted(
    signing_pki: SigningPKI, signers: Signers
) -> None:
    code, text = _trust_check(signing_pki, signers.unreachable.cert_file)
    assert code == 1
    assert "NOT reachable: cannot connect" in text and "firewall, proxy, DNS" in text
    code, text = _trust_check(signing_pki, signers.untrusted.cert_file, lang="vi")
    assert code == 1 and "[FAIL]" in text and "no path to a configured trust anchor" in text
    assert "Không xây dựng được đường dẫn tin cậy" in text
    code, text = _trust_check(signing_pki, signers.wrong_usage.cert_file)
    assert code == 1 and "neither digitalSignature nor nonRepudiation" in text


def test_trust_check_with_an_empty_store(tmp_path: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert run_trust_check(None, trust_dir=str(tmp_path)) == 1
    assert "none: no signature can be trusted" in out.getvalue()
    assert run_trust_check(None, trust_dir=str(tmp_path / "missing")) == 2


def test_verify_refuses_a_relocated_signature_and_xml_that_is_not_edxml(
    tmp_path: Path, signing_pki: SigningPKI, signers: Signers
) -> None:
    attack = tmp_path / "relocated.edxml"
    attack.write_bytes(relocate_signature(sign_edxml(edxml(), signers.good)))
    code, text = _verify(signing_pki, attack, lang="en")
    assert code == 1
    assert text.splitlines()[0].endswith(": INVALID")
    assert "misplaced_signature" in text and "signature_wrapping" in text

    near_miss = tmp_path / "near-miss.xml"
    wrong = "http://www.mic.gov.vn/TBT/QCVN_102_2016/WRONG"
    near_miss.write_bytes(
        sign_edxml(
            edxml().replace(b"http://www.mic.gov.vn/TBT/QCVN_102_2016", wrong.encode()),
            signers.good,
        )
    )
    code, text = _verify(signing_pki, near_miss)
    assert code == 1
    assert text.splitlines()[0].endswith(": KHÔNG HỢP LỆ")
    assert "[xmldsig] XML:" in text and "not_edxml" in text and wrong in text
    assert "không phải là edXML" in text
