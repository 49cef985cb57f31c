"""The axis as public client code speaks it: our adapter's bytes against fixtures, not our mock.

The requests (``tests/fixtures/axis/sdk-requests.json``) are what VNPT's Java
SDK (``JAVA_SDK_VXP`` 2.0.x, classes ``VnptService``, ``KnobstickServiceImp``,
``HttpConnection``, ``MultipartUtility``) sends for a fixed clock, account and
secret: ``tests/fixtures/axis/SdkRequests.java`` replays the SDK's code with
its own libraries (Java's HashMap, Gson, commons-codec) to write them. The
calls are made as Bkav's ``ServiceVPCP`` (sendEdoc, updateStatus) and the
SDK's example ``ServiceTest`` (the list, getEdoc) make them.

The answers (``tests/fixtures/axis/answers.json``) have the members public
code reads from them: ``status``/``ErrorCode``/``ErrorDesc`` everywhere,
top-level ``DocId`` (SDK ``sendEdoc``, TLTV ``sendEdocExt``), list items
``docId, serviceType, messageType, created_time, updated_time, from, to,
status, status_desc`` (SDK ``getReceivedEdocList``), base64 ``data``
(SDK ``getEdoc``). Their values (ids, times, descriptions) are made up.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from adapters.base import AdapterContext, GatewayRequest, GatewayResponse
from adapters.document_axis import client
from adapters.document_axis.adapter import DocumentAxisAdapter
from adapters.document_axis.answer import AnswerError, AnswerReader
from adapters.document_axis.mock import create_app as create_axis
from adapters.document_axis.settings import AxisProtocol
from schemas.edxml.formats import VIETNAM
from tests.support.config import ROOT
from tests.support.servers import serve_in_thread

FIXTURES = Path(__file__).parent / "fixtures" / "axis"
SDK_REQUESTS = json.loads((FIXTURES / "sdk-requests.json").read_text())
ANSWERS = json.loads((FIXTURES / "answers.json").read_text())
DOCUMENT = ROOT / "tests/fixtures/edxml/cong-van-1234-UBND-VP.edxml"
CLOCK = datetime(2026, 11, 30, 22, 16, 4, 274_000, tzinfo=VIETNAM)
SECRET = "contract-secret-2026"
DOC_ID = "5bebcfeff858e3e0cc154762"
UBND = "000.00.11.H53"
TRANSPORT = {"host", "accept", "accept-encoding", "connection", "content-length"}
"""Headers the HTTP library adds on its own (the SDK's does too): not part of the protocol."""


def _with_files(text: str) -> bytes:
    """A fixture's body, ``<path>`` standing for that file's bytes."""
    if text.startswith("<tests/"):
        path, _, rest = text[1:].partition(">")
        return (ROOT / path).read_bytes() + rest.encode()
    return text.encode()


def test_the_signature_is_the_sdks_rule_computed_by_hand() -> None:
    # The SDK's rule on a two-entry map: "XroadVnpt-" names, compact JSON in HashMap order
    # (systemid hashes to bucket 2, timestamp to 15), names joined by ";", hex HMAC-SHA256.
    entries = [("timestamp", "30112026T221604+0274"), ("systemid", "lgsp-contract")]
    sign_header = (
        '{"XroadVnpt-systemid":"lgsp-contract","XroadVnpt-timestamp":"30112026T221604+0274"}'
    )
    digest = hmac.new(SECRET.encode(), sign_header.encode(), hashlib.sha256).hexdigest()
    assert client.signed_headers(entries, SECRET, AxisProtocol()) == [
        ("XroadVnpt-systemid", "lgsp-contract"),
        ("XroadVnpt-timestamp", "30112026T221604+0274"),
        ("XroadVnpt-sign-header-key", "systemid;timestamp"),
        ("XroadVnpt-sign-header", sign_header),
        ("XroadVnpt-hash-header", digest),
        ("User-Agent", "JAVASDKAgent/1.0.0 XRoad/VPCP"),
        ("XroadVnpt-version", "3.0.201608"),
    ]
    assert SECRET not in json.dumps(client.signed_headers(entries, SECRET, AxisProtocol()))
    assert client.axis_timestamp(CLOCK) == "30112026T221604+0274"
    assert client.axis_timestamp(CLOCK.replace(microsecond=5_000)) == "30112026T221604+0005"


def test_hash_file_is_written_unpadded_like_the_sdk_and_read_either_way() -> None:
    digest = hashlib.sha256(DOCUMENT.read_bytes()).digest()
    sdk = dict(SDK_REQUESTS["sendEdoc"]["headers"])["XroadVnpt-hash-file"]
    assert len(sdk) < 64  # this digest has bytes under 0x10: the SDK drops their leading 0
    assert client.sha256_hex(digest, "unpadded") == sdk
    assert client.sha256_hex(digest, "padded") == digest.hex()
    assert client.hash_matches(sdk, digest) and client.hash_matches(digest.hex().upper(), digest)


class Recorder:
    """Stands in for the axis: records each request, answers from the fixtures."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, list[tuple[str, str]], bytes]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        headers = [
            (name.decode(), value.decode())
            for name, value in request.headers.raw
            if name.decode().lower() not in TRANSPORT
        ]
        self.requests.append((request.url.path, headers, body))
        call = request.url.path.strip("/")
        if request.headers.get("XroadVnpt-messagetype") == "status":
            call = f"{call}-status" if f"{call}-status" in self.answers else call
        answer = self.answers[call]
        data = answer.get("data")
        if isinstance(data, str) and data.startswith("<base64 of "):
            path = data.removeprefix("<base64 of ").removesuffix(">")
            answer = {**answer, "data": base64.b64encode((ROOT / path).read_bytes()).decode()}
        return httpx.Response(200, json=answer)


def _run(
    operation: str, answers: dict[str, Any], monkeypatch: pytest.MonkeyPatch, **request: Any
) -> tuple[GatewayResponse, Recorder]:
    monkeypatch.setattr(client, "now", lambda: CLOCK)
    settings = msgspec.convert(
        {
            "base_url": "https://axis.example.gov.vn",
            "credentials": {"system_id": "lgsp-contract", "secret": SECRET},
            "agencies": {UBND: "ubnd-qlvb"},
        },
        DocumentAxisAdapter.Settings,
    )
    recorder = Recorder(answers)

    async def run() -> GatewayResponse:
        adapter = DocumentAxisAdapter("axis", settings, AdapterContext(".", "."))
        await adapter.axis.client.aclose()
        adapter.axis.client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
        try:
            return await adapter.handle(
                GatewayRequest(
                    operation=operation,
                    method="POST",
                    path="/v1",
                    path_params={"organ_id": UBND, "doc_id": DOC_ID},
                    deadline=time.monotonic() + 10,
                    **request,
                )
            )
        finally:
            await adapter.aclose()

    return asyncio.run(run()), recorder


def _sdk(call: str) -> tuple[str, list[tuple[str, str]], bytes]:
    fixture = SDK_REQUESTS[call]
    headers = [(name, value) for name, value in fixture["headers"]]
    return fixture["path"], headers, _with_files(fixture["body"])


def _same(ours: tuple[str, list[tuple[str, str]], bytes], sdk: Any) -> None:
    """Path, body and header set equal (header order means nothing in HTTP; the signed JSON,
    where order counts, is one of the values)."""
    path, headers, body = ours
    sdk_path, sdk_headers, sdk_body = sdk
    assert (path, body) == (sdk_path, sdk_body)
    assert sorted((n.lower(), v) for n, v in headers) == sorted(
        (n.lower(), v) for n, v in sdk_headers
    )


def test_send_edoc_sends_what_the_sdk_sends_and_reads_the_top_level_doc_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer, recorder = _run(
        "sendEdoc",
        ANSWERS,
        monkeypatch,
        body=DOCUMENT.read_bytes(),
        content_type="application/xml",
    )
    (request,) = recorder.requests
    _same(request, _sdk("sendEdoc"))
    assert answer.status == 201
    assert json.loads(answer.body)["docId"] == DOC_ID


def test_the_received_list_is_asked_as_the_sdk_asks_and_filtered_by_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer, recorder = _run("getReceivedEdocList", ANSWERS, monkeypatch)
    edoc, status = recorder.requests  # messagetype is required: documents, then statuses
    _same(edoc, _sdk("getReceivedEdocList"))
    assert dict(status[1])["XroadVnpt-messagetype"] == "status"
    (item,) = json.loads(answer.body)["items"]  # the other is for Sở TT&TT, not UBND
    assert (item["docId"], item["to"], item["messageType"]) == (
        DOC_ID,
        UBND,
        "ElectronicDocument",
    )


def test_get_edoc_asks_as_the_sdk_asks_and_decodes_the_base64_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer, recorder = _run("getEdoc", ANSWERS, monkeypatch)
    (request,) = recorder.requests
    _same(request, _sdk("getEdoc"))
    assert answer.body == DOCUMENT.read_bytes()

    missing, _ = _run("getEdoc", {"getEdoc": ANSWERS["getEdoc-missing"]}, monkeypatch)
    assert missing.status == 404


def test_update_status_sends_what_the_sdk_sends(monkeypatch: pytest.MonkeyPatch) -> None:
    answer, recorder = _run("updateStatus", ANSWERS, monkeypatch, body=b'{"status": "done"}')
    (request,) = recorder.requests
    _same(request, _sdk("updateStatus"))
    assert json.loads(answer.body) == {"docId": DOC_ID, "status": "done"}


def test_the_mock_axis_takes_the_sdks_own_requests_and_refuses_unsigned_or_altered_ones() -> None:
    """Our mock against the SDK's bytes (not our adapter's): what it accepts is what the SDK
    sends; an unsigned call, a wrong secret or a header changed after signing gets FAIL."""
    app = create_axis(credentials={"lgsp-contract": SECRET}, agencies={"lgsp-contract": ["*"]})
    path, headers, body = _sdk("sendEdoc")
    with serve_in_thread(app) as axis:
        sent = httpx.post(axis + path, headers=headers, content=body).json()
        assert (sent["status"], sent["ErrorCode"]) == ("OK", "0"), sent
        stored = httpx.get(f"{axis}/__mock/documents/{sent['DocId']}/content").content
        assert stored == DOCUMENT.read_bytes()  # the SDK's CRLF is not part of the document

        path, headers, body = _sdk("getReceivedEdocList")
        listed = httpx.post(axis + path, headers=headers, content=body).json()
        assert [item["to"] for item in listed["data"]] == ["000.00.00.G22", "000.00.12.H53"]

        path, headers, body = _sdk("getEdoc")
        headers = [(n, sent["DocId"] if n == "XroadVnpt-docId" else v) for n, v in headers]
        altered = httpx.post(axis + path, headers=headers, content=body)
        unsigned = httpx.post(
            axis + path, headers={"XroadVnpt-docId": sent["DocId"], "XroadVnpt-systemid": "x"}
        )
        wrong = create_axis(credentials={"lgsp-contract": "another-secret"})
        with serve_in_thread(wrong) as other:
            refused = httpx.post(other + "/sendEdoc", headers=_sdk("sendEdoc")[1], content=body)
    for answer in (altered, unsigned, refused):
        assert answer.status_code == 401
        assert (answer.json()["status"], answer.json()["ErrorCode"]) == ("FAIL", "401")
    assert "differs from the signed value" in altered.json()["ErrorDesc"]


@pytest.mark.parametrize("piece", [1, 5, 4096])
def test_get_edoc_answers_are_read_however_they_are_encoded_and_cut(piece: int) -> None:
    """``data`` first or last, ``/`` escaped as ``\\/`` (PHP-style encoders), cut anywhere."""
    document = DOCUMENT.read_bytes()
    data = base64.b64encode(document).decode()
    for members in (
        {"data": data, "status": "OK", "ErrorCode": "0", "ErrorDesc": ""},
        {"status": "OK", "ErrorCode": "0", "ErrorDesc": 'a "quoted", {odd} one', "data": data},
    ):
        text = json.dumps(members).replace("/", "\\/").encode()
        out = io.BytesIO()
        reader = AnswerReader(out)
        for start in range(0, len(text), piece):
            reader.feed(text[start : start + piece])
        assert reader.finish() == {k: v for k, v in members.items() if k != "data"}
        assert out.getvalue() == document
    with pytest.raises(AnswerError):
        AnswerReader(io.BytesIO()).feed(b'{"data":"not base64!"}')
