"""Routes that validate XML bodies with an .xsd, through HTTP: every failure is a 422 with paths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from tests.fixtures.edxml import samples
from tests.support.config import BASE_CONFIG, TEST_KEY, write_config

CONFIG = """
storage: {{url: "sqlite:///DB"}}
upstreams:
  axis:
    type: stub
    operations: {{sendEdoc: {{reply: {{body: {{status: OK}}}}}}}}
routes:
  - {{id: xsd, match: {{method: POST, path: /xsd}}, clients: ["*"], upstream: axis,
      operation: sendEdoc, request: {{schema: edxml/edxml.xsd}}}}
"""
XML = {"x-api-key": TEST_KEY, "content-type": "application/xml"}
MH = "/edXML/edXMLEnvelope/edXMLHeader/MessageHeader"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[type-arg]
    text = CONFIG.replace("DB", f"{tmp_path}/gw.db")
    with TestClient(create_app(str(write_config(tmp_path, BASE_CONFIG + text)))) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("body", "paths"),
    [
        pytest.param(
            samples.QUIRKS.read_bytes()  # every element written edXML:Name
            .replace(b"<edXML:OrganId>000.00.11.H53<", b"<edXML:OrganId>H53<")
            .replace(
                b"<edXML:Subject>",
                b"<edXML:ApplicationType>MCDT</edXML:ApplicationType><edXML:Subject>",
            ),
            [f"{MH}/To/OrganId", f"{MH}/ApplicationType"],
            id="prefixed",
        ),
        pytest.param(
            samples.FULL.read_bytes().replace(b"<OrganId>000.00.00.G22<", b"<OrganId>G22<"),
            [f"{MH}/To[1]/OrganId"],
            id="default-namespace",
        ),
        pytest.param(
            samples.QUIRKS.read_bytes().replace(
                b"<edXML:edXMLHeader>",
                b'<edXML:edXMLHeader xmlns:x="urn:other"><x:Extra/>',
            ),
            ["/edXML/edXMLEnvelope/edXMLHeader/Extra"],
            id="foreign-prefix",
        ),
    ],
)
def test_every_xsd_failure_is_a_422_with_element_paths(
    client: TestClient,  # type: ignore[type-arg]
    body: bytes,
    paths: list[str],
) -> None:
    response = client.post("/xsd", content=body, headers=XML)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "schema_invalid" and problem["request_id"]
    assert [error["path"] for error in problem["errors"]] == paths
    assert all(error["message"].startswith("line ") for error in problem["errors"])


def test_a_valid_prefixed_document_passes(client: TestClient) -> None:  # type: ignore[type-arg]
    response = client.post("/xsd", content=samples.QUIRKS.read_bytes(), headers=XML)
    assert response.status_code == 200, response.text
