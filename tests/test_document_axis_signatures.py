"""Inbound documents from the axis: signatures verified before they reach an agency, on record."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.document_axis.mock import DEMO_CREDENTIALS
from adapters.document_axis.mock import create_app as create_axis
from gateway.app import create_app
from tests.support.config import write_config
from tests.support.document_axis import AgencySystem, inbound_records
from tests.support.servers import serve_in_thread
from tests.support.signed_documents import edxml, sign_edxml
from tests.support.signing_pki import Signers, SigningPKI

VPCP = "000.00.00.G22"  # the receiver of tests.support.signed_documents.edxml(): here, one of "our" agencies
CONFIG = """\
storage: {{url: "sqlite:///@DB@"}}
admin: {{api_keys: ["{admin_key}"]}}
trust: {{anchors: "@ANCHORS@", fetch_timeout: 2s}}
upstreams:
  axis:
    type: document_axis
    base_url: "@AXIS@"
    credentials: {{system_id: lgsp-demo, secret: "@SECRET@"}}
    agencies: {{"000.00.00.G22": vpcp-qlvb}}
    inbound: {{verify_signatures: required}}
    poll_interval: 100ms
  vpcp-qlvb: {{type: http, base_url: "@AGENCY@"}}
"""


@pytest.fixture
def setup(tmp_path: Path, signing_pki: SigningPKI) -> Iterator[tuple[str, str, AgencySystem]]:
    agency = AgencySystem()
    axis_app = create_axis(agencies={"lgsp-demo": [VPCP]})  # VPCP is one of "ours" here
    with serve_in_thread(axis_app) as axis, serve_in_thread(agency) as agency_url:
        text = (
            CONFIG.replace("@DB@", f"{tmp_path}/gateway.db")
            .replace("@ANCHORS@", str(signing_pki.anchors))
            .replace("@AXIS@", axis)
            .replace("@SECRET@", DEMO_CREDENTIALS["lgsp-demo"])
            .replace("@AGENCY@", agency_url)
        )
        with serve_in_thread(create_app(str(write_config(tmp_path, text)))) as gateway:
            yield gateway, axis, agency


def drop(axis: str, body: bytes) -> str:
    dropped = httpx.post(f"{axis}/__mock/inbox/{VPCP}", content=body)
    assert dropped.status_code == 201, dropped.text
    doc_id: str = dropped.json()["docId"]
    return doc_id


def settled(axis: str, doc_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        view: dict[str, Any] = httpx.get(f"{axis}/__mock/documents/{doc_id}").json()
        if view["statuses"][VPCP] in ("done", "fail"):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.05)


def test_a_signed_document_goes_on_with_its_verification_on_record(
    setup: tuple[str, str, AgencySystem], signers: Signers
) -> None:
    gateway, axis, agency = setup
    doc_id = drop(axis, sign_edxml(edxml(), signers.good))
    assert settled(axis, doc_id)["statuses"] == {VPCP: "done"}
    (delivered,) = agency.wait(1)
    assert delivered["headers"]["x-lgsp-edoc-id"] == doc_id
    records = inbound_records(gateway)
    (accepted,) = [r for r in records if r["kind"] == "accepted"]
    signature = accepted["signature"]
    signature = json.loads(signature) if isinstance(signature, str) else signature
    assert signature["verdict"] == "valid"
    assert "Nguyễn Văn An" in signature["signer_subject"]


def test_unsigned_and_tampered_documents_are_refused_on_the_axis_and_never_delivered(
    setup: tuple[str, str, AgencySystem], signers: Signers
) -> None:
    _, axis, agency = setup
    unsigned = drop(axis, edxml())
    tampered = drop(
        axis, sign_edxml(edxml(), signers.good).replace("triển khai".encode(), "hủy bỏ".encode())
    )
    refused_unsigned, refused_tampered = settled(axis, unsigned), settled(axis, tampered)
    assert refused_unsigned["statuses"] == {VPCP: "fail"}
    assert refused_unsigned["status_desc"][VPCP].startswith("signature ")
    assert refused_tampered["statuses"] == {VPCP: "fail"}
    assert refused_tampered["status_desc"][VPCP].startswith("signature invalid")
    time.sleep(0.3)
    assert agency.received == []
