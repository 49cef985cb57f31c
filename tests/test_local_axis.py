"""The province's own axis: documents between its agencies never leave the province.

End to end through the gateway's HTTP routes, with the mock national axis and
two agency systems on loopback (tests/support/document_axis.py).
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

import schemas.edxml as edxml
from adapters.document_axis.mock import DEMO_CREDENTIALS
from adapters.document_axis.mock import create_app as create_axis
from gateway.app import create_app
from gateway.config.loader import ConfigInvalid, load_config
from tests.fixtures.edxml import samples
from tests.support import document_axis as document_axis_support
from tests.support import signed_documents
from tests.support.config import write_config
from tests.support.databases import create_database, drop_database
from tests.support.document_axis import CONFIG as AXIS_CONFIG
from tests.support.document_axis import (
    KEY,
    SO_TC,
    SO_TTTT,
    UBND,
    VPCP,
    AgencySystem,
    Setup,
    axis_mock,
    call_axis_as,
    inbound_records,
    send_document,
    wait_settled,
)
from tests.support.processes import gateway_process
from tests.support.servers import free_port, serve_in_thread
from tests.support.signed_documents import sign_edxml
from tests.support.signing_pki import Signers, SigningPKI
from tests.support.upstreams import RecordingUpstream


def _send(setup: Setup, body: bytes) -> httpx.Response:
    """A document sent through the route with room for time: the one with a 1 s timeout is
    for the axis's faults, and a loaded machine can take that long to store a few legs."""
    return send_document(setup, body, large=True)


def _receivers(setup: Setup, doc_id: str) -> dict[str, dict[str, Any]]:
    answer = httpx.get(f"{setup.gateway}/v1/documents/{doc_id}/receivers", headers=KEY)
    assert answer.status_code == 200, answer.text
    assert answer.json()["docId"] == doc_id
    return {r["organId"]: r for r in answer.json()["receivers"]}


def _delivered(setup: Setup, doc_id: str, organ_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while (leg := _receivers(setup, doc_id)[organ_id])["delivery"] != "delivered":
        assert time.monotonic() < deadline, leg
        time.sleep(0.05)
    return leg


OTHER = {"x-api-key": "agency-b-key-0123456789"}
"""A client that is not Sở Tài chính's (its mailbox is agency-a's alone)."""


def _mailbox(setup: Setup, organ_id: str = SO_TC) -> dict[str, dict[str, Any]]:
    answer = httpx.get(f"{setup.gateway}/v1/agencies/{organ_id}/documents", headers=KEY)
    assert answer.status_code == 200, answer.text
    return {item["docId"]: item for item in answer.json()["items"]}


def _settle(setup: Setup, doc_id: str, status: str, reason: str = "") -> httpx.Response:
    return httpx.put(
        f"{setup.gateway}/v1/agencies/{SO_TC}/documents/{doc_id}",
        json={"status": status, "reason": reason},
        headers=KEY,
    )


def _recall(document: edxml.EdxmlDocument, business: int = 1) -> bytes:
    """The same document sent again as a recall (1), update (2) or replace (3) of itself."""
    document.bussiness = edxml.Bussiness(
        DocumentId=document.header.DocumentId,
        BussinessDocType=business,
        BussinessDocReason="Sai số liệu tại mục 2",
    )
    return edxml.build_bytes(document)


def test_the_directory_lists_the_provinces_agencies(running: Setup) -> None:
    answer = httpx.get(f"{running.gateway}/v1/agencies", headers=KEY)
    assert answer.status_code == 200, answer.text
    items = {a["organId"]: a for a in answer.json()["items"]}
    assert items[SO_TTTT]["receives"] == "system"
    assert items[SO_TC] == {
        "organId": SO_TC,
        "name": "Sở Tài chính",
        "level": "department",
        "parent": UBND,
        "receives": "mailbox",
    }


def test_a_document_between_agencies_of_the_province_never_reaches_the_national_axis(
    running: Setup,
) -> None:
    body = edxml.build_bytes(samples.document(To=[samples.SO_TTTT]))
    answer = _send(running, body)
    assert answer.status_code == 201, answer.text
    doc_id = answer.json()["docId"]
    (delivered,) = running.so_tttt.wait(1)
    assert delivered["headers"]["x-lgsp-edoc-id"] == doc_id
    assert delivered["headers"]["x-lgsp-from"] == UBND
    assert delivered["path"] == "/lgsp/edocs"
    assert "sendEdoc" not in axis_mock(running, "stats")["requests"]
    leg = _delivered(running, doc_id, SO_TTTT)
    assert leg["via"] == "local" and leg["status"] is None
    assert leg["deliveryAt"] >= leg["sentAt"]


def test_a_document_for_local_and_national_receivers_is_split(running: Setup) -> None:
    body = edxml.build_bytes(samples.document())  # From UBND, To VPCP and Sở TT&TT
    answer = _send(running, body)
    assert answer.status_code == 201, answer.text
    doc_id = answer.json()["docId"]
    assert axis_mock(running, "stats")["requests"]["sendEdoc"] == 1
    assert _delivered(running, doc_id, SO_TTTT)["via"] == "local"
    assert _receivers(running, doc_id)[VPCP]["via"] == "national"
    # The axis lists it for Sở TT&TT too (the edXML names it): taken once, settled there.
    assert wait_settled(running, doc_id, SO_TTTT)["statuses"][SO_TTTT] == "done"
    time.sleep(0.3)  # more polls: nothing is delivered twice
    assert len(running.so_tttt.received) == 1


def test_a_local_receivers_status_reaches_the_sender_locally(running: Setup) -> None:
    document = samples.document(To=[samples.SO_TTTT])
    doc_id = _send(running, edxml.build_bytes(document)).json()["docId"]
    running.so_tttt.wait(1)
    reply = {
        "From": {"OrganId": SO_TTTT, "OrganName": "Sở Thông tin và Truyền thông"},
        "ResponseFor": {"OrganId": UBND, "DocumentId": document.header.DocumentId},
        "StatusCode": "03",
        "Description": "Đã tiếp nhận",
    }
    answer = httpx.post(f"{running.gateway}/v1/document-statuses", json=reply, headers=KEY)
    assert answer.status_code == 201, answer.text
    (relayed,) = running.ubnd.wait(1)
    assert relayed["path"] == "/lgsp/edoc-statuses"
    assert relayed["headers"]["x-lgsp-from"] == SO_TTTT
    assert "sendEdoc" not in axis_mock(running, "stats")["requests"]
    leg = _receivers(running, doc_id)[SO_TTTT]
    assert leg["status"] == "03" and leg["statusAt"] >= leg["sentAt"]


def test_answers_arriving_together_are_all_kept(running: Setup) -> None:
    """Each answer changes the sender's record; two at once must not overwrite each other."""
    document = samples.document(To=[samples.SO_TTTT, samples.SO_TC])
    doc_id = _send(running, edxml.build_bytes(document)).json()["docId"]

    def answer(organ_id: str, status: str) -> int:
        reply = {
            "From": {"OrganId": organ_id, "OrganName": organ_id},
            "ResponseFor": {"OrganId": UBND, "DocumentId": document.header.DocumentId},
            "StatusCode": status,
        }
        url = f"{running.gateway}/v1/document-statuses"
        return httpx.post(url, json=reply, headers=KEY, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        for status in ("03", "04", "05"):  # received, assigned, in progress: both, each time
            assert list(pool.map(answer, [SO_TTTT, SO_TC], [status] * 2)) == [201, 201]
            receivers = _receivers(running, doc_id)
            assert [receivers[SO_TTTT]["status"], receivers[SO_TC]["status"]] == [status] * 2


def test_a_national_receivers_status_shows_on_the_senders_record(running: Setup) -> None:
    doc_id = _send(running, edxml.build_bytes(samples.document())).json()["docId"]
    with edxml.parse(
        httpx.get(f"{running.axis}/__mock/documents/{doc_id}/content").content
    ) as original:
        status = edxml.build_status(edxml.status_reply(original, "06", sender=samples.VPCP))
    entries = [
        ("from", VPCP),
        ("servicetype", "eDoc"),
        ("messagetype", "status"),
        ("hash-file", hashlib.sha256(status).hexdigest()),
    ]
    assert call_axis_as(running, "vpcp-demo", "/sendEdoc", entries, status)["status"] == "OK"
    running.ubnd.wait(1)
    deadline = time.monotonic() + 15
    while (leg := _receivers(running, doc_id)[VPCP])["status"] != "06":
        assert time.monotonic() < deadline, leg
        time.sleep(0.05)
    assert leg["via"] == "national" and leg["delivery"] == "sent"


def test_receivers_of_an_unknown_document_are_not_found(running: Setup) -> None:
    answer = httpx.get(f"{running.gateway}/v1/documents/nope/receivers", headers=KEY)
    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
    assert answer.headers["content-type"] == "application/problem+json"


AXIS = """\
upstreams:
  axis:
    type: document_axis
    base_url: http://127.0.0.1:9
    credentials: {{system_id: lgsp-demo, secret: s}}
    agencies:
      "000.00.11.H53": {{name: UBND tỉnh, level: province, upstream: ubnd-qlvb}}
      "000.00.12.H53": so-qlvb
      "000.00.13.H53": {{name: Sở Tài chính, parent: "000.00.99.H53", clients: [nobody]}}
      "00.13.H53": ubnd-qlvb
  ubnd-qlvb: {{type: stub, operations: {{op: {{reply: {{body: {{}}}}}}}}}}
"""


def _issues(tmp_path: Path, text: str) -> tuple[Path, str]:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigInvalid) as caught:
        load_config(str(path), {})
    return path, "\n".join(str(issue) for issue in caught.value.issues)


def _line(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, 1) if needle in line)


def test_config_check_refuses_a_malformed_organ_id(tmp_path: Path) -> None:
    path, text = _issues(tmp_path, AXIS)
    line = _line(path, '"00.13.H53"')
    assert f"{path}:{line}: upstreams.axis.agencies['00.13.H53']: " in text
    assert "expected an agency id like 000.00.12.H53" in text


def test_config_check_refuses_unknown_upstreams_parents_and_clients(tmp_path: Path) -> None:
    path, text = _issues(tmp_path, AXIS.replace('      "00.13.H53": ubnd-qlvb\n', ""))
    assert (
        f"{path}:{_line(path, 'so-qlvb')}: upstreams.axis.agencies['000.00.12.H53']: "
        "no such upstream"
    ) in text, text
    parent = _line(path, "000.00.99.H53")
    assert (
        f"{path}:{parent}: upstreams.axis.agencies['000.00.13.H53'].parent: "
        "not an agency of the directory"
    ) in text, text
    assert (
        f"{path}:{parent}: upstreams.axis.agencies['000.00.13.H53'].clients[0]: no such client"
    ) in text, text


def test_only_an_agencys_own_client_acts_for_it(running: Setup) -> None:
    other = {"x-api-key": "agency-b-key-0123456789"}
    base = f"{running.gateway}/v1/agencies/{SO_TC}/documents"
    refused = httpx.get(base, headers=other)
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")
    assert httpx.get(base, headers=KEY).status_code == 200
    sent = _send(
        running,
        edxml.build_bytes(samples.document(From=samples.SO_TC, To=[samples.SO_TTTT])),
    )
    assert sent.status_code == 201, sent.text
    as_other = httpx.post(
        f"{running.gateway}/v1/documents",
        content=edxml.build_bytes(samples.document(From=samples.SO_TC, To=[samples.SO_TTTT])),
        headers={**other, "content-type": "application/xml"},
    )
    assert (as_other.status_code, as_other.json()["code"]) == (403, "forbidden")


def test_a_pull_agency_gets_its_documents_in_its_mailbox_here(running: Setup) -> None:
    body = edxml.build_bytes(samples.document(To=[samples.SO_TC]))
    answer = _send(running, body)
    assert answer.status_code == 201, answer.text
    doc_id = answer.json()["docId"]
    assert "sendEdoc" not in axis_mock(running, "stats")["requests"]
    leg = _receivers(running, doc_id)[SO_TC]
    assert (leg["via"], leg["delivery"], leg["status"]) == ("mailbox", "initial", None)
    item = _mailbox(running)[doc_id]
    assert (item["from"], item["to"], item["status"]) == (UBND, SO_TC, "initial")
    assert (item["messageType"], item["via"]) == ("ElectronicDocument", "local")
    fetched = httpx.get(f"{running.gateway}/v1/agencies/{SO_TC}/documents/{doc_id}", headers=KEY)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == body
    assert fetched.headers["content-type"].startswith("application/xml")
    # On record like every other leg: accepted for Sở Tài chính, with the sender's bytes' hash.
    records = inbound_records(running.gateway)
    (record,) = [r for r in records if r["message_id"] == leg["messageId"]]
    assert record["kind"] == "accepted"
    assert record["request_sha256"] == hashlib.sha256(body).hexdigest()


def test_only_the_agencys_own_client_reads_its_mailbox_here(running: Setup) -> None:
    body = edxml.build_bytes(samples.document(To=[samples.SO_TC]))
    doc_id = _send(running, body).json()["docId"]
    one = f"{running.gateway}/v1/agencies/{SO_TC}/documents/{doc_id}"
    for answer in (
        httpx.get(f"{running.gateway}/v1/agencies/{SO_TC}/documents", headers=OTHER),
        httpx.get(one, headers=OTHER),
        httpx.put(one, json={"status": "done"}, headers=OTHER),
    ):
        assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")
    assert _mailbox(running)[doc_id]["status"] == "initial"  # the refused update changed nothing


def test_settling_a_document_in_the_mailbox_answers_its_sender(running: Setup) -> None:
    document = samples.document(To=[samples.SO_TC])
    doc_id = _send(running, edxml.build_bytes(document)).json()["docId"]
    processing = _settle(running, doc_id, "processing")
    assert processing.json() == {"docId": doc_id, "status": "processing"}
    assert _mailbox(running)[doc_id]["status"] == "processing"
    assert _settle(running, doc_id, "done").status_code == 200
    assert doc_id not in _mailbox(running)  # settled: no longer waiting
    (status,) = running.ubnd.wait(1)  # UBND's system gets Sở Tài chính's "received"
    assert status["path"] == "/lgsp/edoc-statuses"
    assert status["headers"]["x-lgsp-from"] == SO_TC
    leg = _receivers(running, doc_id)[SO_TC]
    assert (leg["delivery"], leg["status"]) == ("done", "03")
    assert _settle(running, doc_id, "done").status_code == 200
    time.sleep(0.3)
    assert len(running.ubnd.received) == 1  # settled again: not answered twice


def test_a_refusal_in_the_mailbox_reaches_the_sender_with_its_reason(running: Setup) -> None:
    doc_id = _send(running, edxml.build_bytes(samples.document(To=[samples.SO_TC]))).json()["docId"]
    assert _settle(running, doc_id, "fail", "Không đúng thẩm quyền").status_code == 200
    running.ubnd.wait(1)
    leg = _receivers(running, doc_id)[SO_TC]
    assert (leg["delivery"], leg["status"]) == ("fail", "02")


def test_a_split_document_is_listed_once_in_a_mailbox_here(running: Setup) -> None:
    body = edxml.build_bytes(samples.document(To=[samples.VPCP, samples.SO_TC]))
    doc_id = _send(running, body).json()["docId"]
    assert axis_mock(running, "stats")["requests"]["sendEdoc"] == 1
    assert _receivers(running, doc_id)[SO_TC]["via"] == "mailbox"
    listed = [i for i in _mailbox(running).values() if i["docId"] == doc_id]
    assert [i["via"] for i in listed] == ["local"]  # the axis lists it too: shown once
    assert _settle(running, doc_id, "done").status_code == 200
    assert axis_mock(running, f"documents/{doc_id}")["statuses"][SO_TC] == "done"


def test_a_document_in_the_mailbox_survives_a_restart(
    axis: str, start_gateway: Any, tmp_path: Path
) -> None:
    first = start_gateway()
    doc_id = _send(first, edxml.build_bytes(samples.document(To=[samples.SO_TC]))).json()["docId"]
    again = start_gateway()  # a second gateway process on the same database
    assert _mailbox(again)[doc_id]["status"] == "initial"


def test_a_recall_reaches_each_local_receiver_and_their_answers_come_back(
    running: Setup,
) -> None:
    document = samples.document(To=[samples.SO_TTTT, samples.SO_TC])
    doc_id = _send(running, edxml.build_bytes(document)).json()["docId"]
    running.so_tttt.wait(1)
    recall = _send(running, _recall(document))
    assert recall.status_code == 201, recall.text
    recall_id = recall.json()["docId"]
    assert "sendEdoc" not in axis_mock(running, "stats")["requests"]
    (_, recalled) = running.so_tttt.wait(2)
    assert recalled["headers"]["x-lgsp-edoc-id"] == recall_id
    assert recall_id in _mailbox(running)
    # Sở TT&TT agrees (15), through its system; Sở Tài chính refuses in its mailbox (16).
    reply = {
        "From": {"OrganId": SO_TTTT, "OrganName": "Sở Thông tin và Truyền thông"},
        "ResponseFor": {"OrganId": UBND, "DocumentId": document.header.DocumentId},
        "StatusCode": "15",
    }
    answer = httpx.post(f"{running.gateway}/v1/document-statuses", json=reply, headers=KEY)
    assert answer.status_code == 201, answer.text
    assert _settle(running, recall_id, "fail", "Đã ban hành văn bản thực hiện").status_code == 200
    codes = {r["headers"]["x-lgsp-from"] for r in running.ubnd.wait(2)}
    assert codes == {SO_TTTT, SO_TC}
    original = httpx.get(f"{running.gateway}/v1/documents/{doc_id}/receivers", headers=KEY).json()
    assert [(a["docId"], a["business"]) for a in original["amendments"]] == [(recall_id, "recall")]
    statuses = {r["organId"]: r["status"] for r in original["receivers"]}
    assert statuses == {SO_TTTT: "15", SO_TC: "16"}
    of_recall = httpx.get(
        f"{running.gateway}/v1/documents/{recall_id}/receivers", headers=KEY
    ).json()
    assert (of_recall["business"], of_recall["amends"]) == ("recall", doc_id)
    assert {r["organId"]: r["status"] for r in of_recall["receivers"]} == statuses


def test_only_the_sender_may_recall_a_document(running: Setup) -> None:
    document = samples.document(To=[samples.SO_TTTT])
    _send(running, edxml.build_bytes(document))
    document.header = msgspec.structs.replace(document.header, From=samples.SO_TC)
    refused = _send(running, _recall(document))
    assert (refused.status_code, refused.json()["code"]) == (403, "not_the_sender")
    assert refused.json()["errors"][0]["path"] == "From/OrganId"


@pytest.mark.processes
@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_kill_9_loses_no_local_leg(tmp_path: Path, database: str) -> None:
    """Documents accepted for local receivers reach each, once, across a kill -9 mid-delivery.

    A real gateway process; Sở TT&TT's system holds what it gets (deliveries in flight),
    Sở Tài chính pulls from its mailbox here.
    """
    system, count = RecordingUpstream(), 6
    system.mode = "hold"
    url = create_database() if database == "postgresql" else f"sqlite:///{tmp_path}/gateway.db"
    with ExitStack() as stack:
        if database == "postgresql":
            stack.callback(drop_database, url)
        axis_port = free_port()
        stack.enter_context(serve_in_thread(create_axis(), port=axis_port))
        system_url = stack.enter_context(serve_in_thread(system))
        ubnd_url = stack.enter_context(serve_in_thread(RecordingUpstream()))
        text = (
            AXIS_CONFIG.replace("@DB@", "@URL@")
            .replace('"sqlite:///@URL@"', f'"{url}"')
            .replace("@AXIS@", f"http://127.0.0.1:{axis_port}")
            .replace("@UBND@", ubnd_url)
            .replace("@SO_TTTT@", system_url)
            .replace("lease: 10s", "lease: 6s")  # above the routes' timeouts
        )
        config = write_config(tmp_path, text)
        env = {"LGSP_AXIS_SECRET": DEMO_CREDENTIALS["lgsp-demo"]}
        port = free_port()
        gateway = f"http://127.0.0.1:{port}"
        with gateway_process(config, port, env=env, log=tmp_path / "first.log") as first:
            setup = Setup(gateway=gateway, axis="", ubnd=AgencySystem(), so_tttt=AgencySystem())
            sent = []
            for number in range(count):
                document = samples.document(
                    To=[samples.SO_TTTT, samples.SO_TC],
                    DocumentId=f"000.00.11.H53,2026/11/20,{number}/UBND-VP",
                )
                answer = _send(setup, edxml.build_bytes(document))
                assert answer.status_code == 201, answer.text
                sent.append(answer.json()["docId"])
            deadline = time.monotonic() + 15
            while system.held() < 4:  # the delivery queue's concurrency per upstream
                assert time.monotonic() < deadline, f"{system.held()} deliveries in flight"
                time.sleep(0.05)
            first.kill()
            assert first.wait(timeout=10) == -9
        with gateway_process(config, port, env=env, log=tmp_path / "second.log"):
            system.mode = "fast"
            legs = {doc_id: _delivered(setup, doc_id, SO_TTTT) for doc_id in sent}
            held = _mailbox(setup)
    _, _, effects = system.snapshot()
    assert effects == {leg["messageId"] for leg in legs.values()}, "a leg lost or doubled"
    assert set(sent) <= set(held), "a mailbox leg lost"


def test_records_and_settled_mailbox_items_are_kept_for_the_retention_alone(
    axis: str, start_gateway: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        document_axis_support,
        "CONFIG",
        AXIS_CONFIG.replace("poll_timeout: 10s", "poll_timeout: 10s\n    retention: 1s"),
    )
    setup = start_gateway()
    settled, waiting = (
        _send(setup, edxml.build_bytes(samples.document(To=[samples.SO_TC]))).json()["docId"]
        for _ in range(2)
    )
    assert _settle(setup, settled, "done").status_code == 200
    deadline = time.monotonic() + 15
    url = f"{setup.gateway}/v1/documents/{settled}/receivers"
    while (gone := httpx.get(url, headers=KEY)).status_code == 200:
        assert time.monotonic() < deadline, gone.text
        time.sleep(0.1)
    assert gone.json()["code"] == "not_found"
    # The settled copy is gone from the mailbox here (the axis never had it: 404 there)...
    fetched = httpx.get(f"{setup.gateway}/v1/agencies/{SO_TC}/documents/{settled}", headers=KEY)
    assert fetched.status_code == 404
    # ...the one not yet settled stays until Sở Tài chính takes it.
    assert _mailbox(setup)[waiting]["status"] == "initial"
    body = httpx.get(f"{setup.gateway}/v1/agencies/{SO_TC}/documents/{waiting}", headers=KEY)
    assert body.status_code == 200


SIGNED_CONFIG = """\
storage: {{url: "sqlite:///@DB@"}}
admin: {{api_keys: ["{admin_key}"]}}
clients: [{{id: agency-a, name: Agency A, api_keys: ["{test_key}"]}}]
trust: {{anchors: "@ANCHORS@", fetch_timeout: 2s}}
upstreams:
  axis:
    type: document_axis
    base_url: "http://127.0.0.1:9"
    credentials: {{system_id: lgsp-demo, secret: s}}
    agencies:
      "000.00.11.H53": {{name: UBND tỉnh}}
      "000.00.00.G22": vpcp-qlvb
      "000.00.13.H53": {{name: Sở Tài chính}}
    inbound: {{verify_signatures: required}}
  vpcp-qlvb: {{type: http, base_url: "@AGENCY@"}}
routes:
  - {{id: send, match: {{method: POST, path: /v1/documents}}, clients: ["*"], upstream: axis,
      operation: sendEdoc, request: {{schema: edxml}}}}
  - {{id: received, match: {{method: GET, path: "/v1/agencies/{{organ_id}}/documents"}},
      clients: ["*"], upstream: axis, operation: getReceivedEdocList}}
"""


def test_a_local_documents_signatures_are_checked_once_before_any_leg(
    tmp_path: Path, signing_pki: SigningPKI, signers: Signers
) -> None:
    """Two local receivers (a system, a mailbox): refused whole, or verified once, on record.

    The national axis is down all along (port 9): the province's own exchange goes on.
    """
    two = signed_documents.edxml().replace(
        b"</To>", b"</To><To><OrganId>000.00.13.H53</OrganId><OrganName>STC</OrganName></To>"
    )
    agency = AgencySystem()
    with serve_in_thread(agency) as agency_url:
        text = (
            SIGNED_CONFIG.replace("@DB@", f"{tmp_path}/gateway.db")
            .replace("@ANCHORS@", str(signing_pki.anchors))
            .replace("@AGENCY@", agency_url)
        )
        with serve_in_thread(create_app(str(write_config(tmp_path, text)))) as gateway:
            setup = Setup(gateway=gateway, axis="", ubnd=AgencySystem(), so_tttt=agency)
            refused = send_document(setup, two)  # its signature is a placeholder
            assert (refused.status_code, refused.json()["code"]) == (422, "schema_invalid")
            assert "signature" in refused.json()["detail"]
            assert agency.received == []
            signed = send_document(setup, sign_edxml(two, signers.good))
            assert signed.status_code == 201, signed.text
            doc_id = signed.json()["docId"]
            agency.wait(1)
            listed = httpx.get(f"{gateway}/v1/agencies/{SO_TC}/documents", headers=KEY).json()
            assert [i["docId"] for i in listed["items"]] == [doc_id]
            assert listed["national"] == "upstream_unavailable"
            records = inbound_records(gateway)
    accepted = [r for r in records if r["kind"] == "accepted"]
    assert len(accepted) == 2 and len({r["request_sha256"] for r in accepted}) == 1
    (evidence,) = [r["signature"] for r in accepted if r["signature"]]
    assert evidence["verdict"] == "valid"
    assert len(agency.received) == 1  # the refused document reached nobody
