"""``lgsp-gateway edxml check``: exit codes, issues with rule, path and message, JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

from gateway.cli import main
from gateway.edxmlcli import run_check
from tests.fixtures.edxml import samples


def _check(*files: Path | str, as_json: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check([str(f) for f in files], as_json=as_json, out=out)
    return code, out.getvalue()


def test_valid_documents_and_status_messages_exit_0() -> None:
    code, text = _check(samples.SDK_DOTNET, samples.SDK_JAVA, samples.STATUS, samples.FULL)
    assert code == 0, text
    assert f"{samples.SDK_JAVA}: valid (document message)" in text
    assert f"{samples.STATUS}: valid (status message)" in text
    assert "WARN  signature_not_verified" in text  # FULL carries a signature
    assert main(["edxml", "check", str(samples.SDK_JAVA)]) == 0


def test_an_invalid_document_exits_1_with_every_issue(tmp_path: Path) -> None:
    broken = tmp_path / "cong-van.edxml"
    broken.write_bytes(
        samples.QUIRKS.read_bytes()
        .replace(b">000.00.11.H53<", b">H53<")
        .replace(
            b"<edXML:Subject>",
            b"<edXML:ApplicationType>MCDT</edXML:ApplicationType><edXML:Subject>",
        )
    )
    code, text = _check(broken, samples.SDK_JAVA, as_json=True)
    assert code == 1
    first, second = json.loads(text)
    assert first["verdict"] == "invalid" and second["verdict"] == "valid"
    mh = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"
    assert [(i["rule"], i["path"]) for i in first["issues"]] == [
        ("unexpected_element", f"{mh}/ApplicationType"),
        ("bad_organ_id", f"{mh}/To[1]/OrganId"),
    ]
    assert all(i["message"] for i in first["issues"])
    code, text = _check(broken)
    assert code == 1 and f"  ERROR bad_organ_id {mh}/To[1]/OrganId: 'H53'" in text


def test_unusable_files_exit_2(tmp_path: Path) -> None:
    near_miss = tmp_path / "near-miss.xml"
    near_miss.write_bytes(
        samples.QUIRKS.read_bytes().replace(b"QCVN_102_2016", b"QCVN_102_2016/WRONG")
    )
    not_xml = tmp_path / "scan.pdf"
    not_xml.write_bytes(b"%PDF-1.4\n%%EOF\n")
    undeclared = tmp_path / "undeclared.edxml"
    undeclared.write_bytes(
        samples.SDK_DOTNET.read_bytes().replace(
            b' xmlns:edXML="http://www.mic.gov.vn/TBT/QCVN_102_2016"', b""
        )
    )
    hostile = tmp_path / "hostile.edxml"
    hostile.write_bytes(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    for path, words in [
        (near_miss, "not edXML: the root element must be edXML in namespace"),
        (not_xml, "not well-formed XML"),
        (undeclared, "namespace prefix is used but not declared"),
        (hostile, "refused:"),
        (tmp_path / "missing.edxml", "cannot read"),
    ]:
        code, text = _check(path, samples.SDK_JAVA)
        assert code == 2, text
        assert f"{path}: cannot be checked: " in text and words in text, text
    code, text = _check(near_miss, as_json=True)
    assert json.loads(text)[0]["verdict"] == "unusable"
