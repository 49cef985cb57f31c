"""Routes that verify signatures, through HTTP: refusals with reasons, results on record."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.signatures.cli import run_verify
from gateway.store.tables import message_log
from tests.support.config import BASE_CONFIG, TEST_KEY, write_config
from tests.support.signed_documents import edxml, relocate_signature, sign_edxml
from tests.support.signing_pki import Signers, SigningPKI

CONFIG = """
storage: {{url: "sqlite:///DB"}}
trust: {{anchors: "ANCHORS", fetch_timeout: 2s}}
upstreams:
  axis:
    type: stub
    operations: {{sendEdoc: {{reply: {{body: {{status: OK}}}}}}}}
routes:
  - {{id: required, match: {{method: POST, path: /required}}, clients: ["*"], upstream: axis,
      operation: sendEdoc, request: {{schema: edxml}}, verify_signatures: required}}
  - {{id: optional, match: {{method: POST, path: /optional}}, clients: ["*"], upstream: axis,
      operation: sendEdoc, verify_signatures: if_present}}
  - id: strict
    match: {{method: POST, path: /strict}}
    clients: ["*"]
    upstream: axis
    operation: sendEdoc
    verify_signatures: {{mode: required, algorithms: strict, revocation: hard-fail}}
"""
XML = {"x-api-key": TEST_KEY, "content-type": "application/xml"}


@pytest.fixture
def client(tmp_path: Path, signing_pki: SigningPKI) -> Iterator[TestClient]:  # type: ignore[type-arg]
    text = CONFIG.replace("DB", f"{tmp_path}/gw.db").replace("ANCHORS", str(signing_pki.anchors))
    with TestClient(create_app(str(write_config(tmp_path, BASE_CONFIG + text)))) as test_client:
        yield test_client


def test_a_valid_signature_passes_and_goes_on_record(client: TestClient, signers: Signers) -> None:  # type: ignore[type-arg]
    response = client.post("/required", content=sign_edxml(edxml(), signers.good), headers=XML)
    assert response.status_code == 200, response.text
    assert response.headers["x-lgsp-signature"].startswith("valid; signer=")
    store = client.app.state.holder.persistence.store
    message_id = response.headers["x-lgsp-message-id"]

    async def stored() -> str:
        async with store.engine.connect() as connection:
            query = sa.select(message_log.c.signature).where(message_log.c.message_id == message_id)
            return str((await connection.execute(query)).scalar_one())

    result = json.loads(client.blocking_portal.call(stored))
    assert result["verdict"] == "valid"
    assert "Nguyễn Văn An" in result["signer_subject"]
    assert result["signed_content"] is None  # the proof is kept, not a second copy of the body


def test_a_tampered_document_is_refused_with_reasons_in_both_languages(
    client: TestClient,  # type: ignore[type-arg]
    signers: Signers,
) -> None:
    signed = sign_edxml(edxml(), signers.good)
    tampered = signed.replace("triển khai".encode(), "hủy bỏ".encode())
    response = client.post("/required", content=tampered, headers=XML)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "signature_invalid"
    assert body["verdict"] == "invalid"
    codes = {error["code"] for error in body["errors"]}
    assert "digest_mismatch" in codes
    assert all(error["message"] and error["message_vi"] for error in body["errors"])
    assert response.headers["x-lgsp-signature"].startswith("invalid")


def test_unsigned_is_refused_where_required_and_passes_where_optional(client: TestClient) -> None:  # type: ignore[type-arg]
    unsigned = edxml().replace(
        b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="placeholder"/>', b""
    )
    required = client.post("/required", content=unsigned, headers=XML)
    assert (required.status_code, required.json()["verdict"]) == (422, "unsigned")
    optional = client.post("/optional", content=unsigned, headers=XML)
    assert optional.status_code == 200
    assert optional.headers["x-lgsp-signature"].startswith("unsigned")


def test_sha1_is_a_warning_by_default_and_refused_where_strict(
    client: TestClient,  # type: ignore[type-arg]
    signers: Signers,
) -> None:
    sha1 = sign_edxml(edxml(), signers.good, algorithm="rsa-sha1", digest="sha1")
    lenient = client.post("/optional", content=sha1, headers=XML)
    assert lenient.status_code == 200
    assert lenient.headers["x-lgsp-signature"].startswith("valid_with_warnings")
    strict = client.post("/strict", content=sha1, headers=XML)
    assert strict.status_code == 422
    assert "weak_algorithm" in {e["code"] for e in strict.json()["errors"]}


@pytest.mark.parametrize("path", ["/optional", "/strict", "/required"])
def test_a_relocated_signature_hiding_a_forged_header_is_refused(
    client: TestClient,  # type: ignore[type-arg]
    signers: Signers,
    path: str,
) -> None:
    attack = relocate_signature(sign_edxml(edxml(subject="Bản gốc"), signers.good))
    response = client.post(path, content=attack, headers=XML)
    assert response.status_code == 422, response.text
    body = response.json()
    if path == "/required":  # its edXML schema already refuses a Signature outside the header
        assert body["code"] == "schema_invalid"
        assert {"path": "/edXML/Signature", "rule": "unexpected_element"}.items() <= (
            body["errors"][0].items()
        )
        return
    assert body["code"] == "signature_invalid" and body["verdict"] == "invalid"
    by_code = {error["code"]: error for error in body["errors"]}
    assert {"misplaced_signature", "signature_wrapping"} <= set(by_code)
    assert "bọc chữ ký" in by_code["signature_wrapping"]["message_vi"]
    assert "Bản giả mạo" not in response.text


def test_a_document_over_the_verification_limit_is_413_not_verified(
    tmp_path: Path, signing_pki: SigningPKI, signers: Signers
) -> None:
    """Verifying holds ~8x a document in memory: over ``trust.max_document_size`` it is
    refused with a clear reason, by a route and by ``lgsp-gateway verify``."""
    text = (
        CONFIG.replace("DB", f"{tmp_path}/gw.db")
        .replace("ANCHORS", str(signing_pki.anchors))
        .replace("fetch_timeout: 2s", "fetch_timeout: 2s, max_document_size: 16KiB")
    )
    signed = sign_edxml(edxml(filler=40_000), signers.good)
    with TestClient(create_app(str(write_config(tmp_path, BASE_CONFIG + text)))) as client:
        small = client.post("/optional", content=sign_edxml(edxml(), signers.good), headers=XML)
        assert small.status_code == 200, small.text
        response = client.post("/optional", content=signed, headers=XML)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert "trust.max_document_size" in response.json()["detail"]
    document = tmp_path / "large.edxml"
    document.write_bytes(signed)
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        code = run_verify(str(document), trust_dir=str(signing_pki.anchors), max_size="16KiB")
    assert code == 2 and "over the signature-verification limit" in errors.getvalue()
