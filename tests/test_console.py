"""The admin console's pages through litestar's test client: what an operator (or an attacker
with a browser) sees. The same flows in a real browser: tests/test_console_browser.py."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.console import sessions
from tests.support.config import TEST_ADMIN_KEY, TEST_KEY
from tests.support.console import console_config, csrf_of, sign_in

KEY = {"x-api-key": TEST_KEY}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:  # type: ignore[type-arg]
    with TestClient(create_app(str(console_config(tmp_path)))) as test_client:
        yield test_client


@pytest.fixture
def signed_in(client: TestClient) -> TestClient:  # type: ignore[type-arg]
    assert sign_in(client).status_code == 303
    return client


def dead_letter(client: TestClient) -> str:  # type: ignore[type-arg]
    """A message to an upstream nobody listens on; one attempt, then dead."""
    message_id: str = client.post("/v1/reports", json={"n": 1}, headers=KEY).json()["message_id"]
    wait_dead(client, message_id)
    return message_id


def wait_dead(client: TestClient, message_id: str) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 10
    while client.get(f"/v1/messages/{message_id}", headers=KEY).json()["state"] != "dead":
        assert time.monotonic() < deadline, "the message never went dead"
        time.sleep(0.05)


def test_every_page_needs_a_session(client: TestClient) -> None:  # type: ignore[type-arg]
    for path in ("/admin/ui", "/admin/ui/messages", "/admin/ui/config", "/admin/ui/usage.csv"):
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/admin/ui/login"
    for path in ("/admin/ui/config/reload", "/admin/ui/deliveries/retry", "/admin/ui/signatures"):
        posted = client.post(path, data={"csrf": "x"}, follow_redirects=False)
        assert posted.status_code == 303, path  # a form whose session ended says so
        assert posted.headers["location"] == "/admin/ui/login?expired=1"


def test_sign_in_sets_a_strict_http_only_cookie(client: TestClient) -> None:  # type: ignore[type-arg]
    wrong = sign_in(client, key="not-the-admin-key")
    assert wrong.status_code == 401
    assert "Khóa quản trị không đúng" in wrong.text
    answer = sign_in(client)
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "lgsp_console=" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test below
    dashboard = client.get("/admin/ui")
    assert dashboard.status_code == 200
    assert dashboard.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in dashboard.headers["content-security-policy"]


def test_cookie_is_secure_over_tls(tmp_path: Path) -> None:
    app = create_app(str(console_config(tmp_path)))
    with TestClient(app, base_url="https://testserver.local") as client:
        answer = sign_in(client)
        cookie = next(c for c in answer.headers.get_list("set-cookie") if "lgsp_console=" in c)
        assert "Secure" in cookie


def test_a_form_without_the_session_token_is_refused(signed_in: TestClient) -> None:  # type: ignore[type-arg]
    forged = signed_in.post("/admin/ui/config/reload", data={"csrf": "guess"})
    assert forged.status_code == 403
    assert "Biểu mẫu đã cũ" in forged.text
    login = signed_in.post("/admin/ui/login", data={"key": TEST_ADMIN_KEY})
    assert login.status_code == 403  # sign-in too: no login CSRF


def test_sign_out_and_idle_expiry_end_the_session(
    signed_in: TestClient,  # type: ignore[type-arg]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = csrf_of(signed_in.get("/admin/ui").text)
    assert signed_in.post("/admin/ui/logout", data={"csrf": token}).status_code == 200
    assert signed_in.get("/admin/ui", follow_redirects=False).status_code == 303

    assert sign_in(signed_in).status_code == 303
    assert signed_in.get("/admin/ui").status_code == 200
    monkeypatch.setattr(sessions, "IDLE_SECONDS", -1.0)
    answer = signed_in.get("/admin/ui", follow_redirects=False)
    assert answer.headers["location"] == "/admin/ui/login?expired=1"
    assert "Phiên làm việc đã hết hạn" in signed_in.get(answer.headers["location"]).text


def test_language_switch(signed_in: TestClient) -> None:  # type: ignore[type-arg]
    assert "Nhật ký thông điệp" in signed_in.get("/admin/ui/messages").text
    switched = signed_in.get("/admin/ui/lang?set=en&next=/admin/ui/messages")
    assert "Message log" in switched.text
    away = signed_in.get("/admin/ui/lang?set=en&next=https://evil.example", follow_redirects=False)
    assert away.headers["location"] == "/admin/ui"


def test_dashboard_counts_traffic_errors_and_dead_letters(signed_in: TestClient) -> None:  # type: ignore[type-arg]
    signed_in.post("/v1/find", json={"so_dinh_danh": "001203012345"}, headers=KEY)
    signed_in.post("/v1/find", json={}, headers={**KEY, "x-stub-fault": "error"})
    message_id = dead_letter(signed_in)
    page = signed_in.get("/admin/ui").text
    assert "find-citizen" in page
    assert "50.0 %" in page  # one of two calls refused
    assert message_id in page
    assert 'class="state up"' in page or 'class="state unknown"' in page


def test_log_search_and_masked_record(signed_in: TestClient) -> None:  # type: ignore[type-arg]
    answer = signed_in.post("/v1/find", json={"so_dinh_danh": "001203012345"}, headers=KEY)
    message_id = answer.headers["x-lgsp-message-id"]
    found = signed_in.get("/admin/ui/messages?route=find-citizen&status=200").text
    assert message_id in found
    assert "Không có bản ghi phù hợp" in signed_in.get("/admin/ui/messages?status=404").text
    assert "expected an HTTP status" in signed_in.get("/admin/ui/messages?status=abc").text
    record = signed_in.get(f"/admin/ui/messages/record?message_id={message_id}").text
    assert "so_dinh_danh" in record
    assert "001203012345" not in record  # a personal field: masked
    assert "Mọi chuỗi nhật ký đều nguyên vẹn" in signed_in.get("/admin/ui/messages/verify").text


def test_retry_and_discard_a_dead_letter(signed_in: TestClient) -> None:  # type: ignore[type-arg]
    message_id = dead_letter(signed_in)
    page = signed_in.get("/admin/ui/deliveries?state=dead").text
    assert message_id in page
    token = csrf_of(page)
    retried = signed_in.post(
        "/admin/ui/deliveries/retry", data={"csrf": token, "message_id": message_id}
    )
    assert "Đã đưa lại vào hàng đợi: 1" in retried.text
    wait_dead(signed_in, message_id)  # its upstream is still down
    unknown = signed_in.post("/admin/ui/deliveries/retry", data={"csrf": token, "message_id": "x"})
    assert unknown.status_code == 404
    no_reason = signed_in.post(
        "/admin/ui/deliveries/discard", data={"csrf": token, "message_id": message_id}
    )
    assert no_reason.status_code == 422
    assert "$.reason" in no_reason.text
    discarded = signed_in.post(
        "/admin/ui/deliveries/discard",
        data={"csrf": token, "message_id": message_id, "reason": "báo cáo gửi lại bằng tay"},
    )
    assert f"Đã hủy bỏ {message_id}" in discarded.text
    api = signed_in.get(
        f"/admin/deliveries?message_id={message_id}", headers={"x-api-key": TEST_ADMIN_KEY}
    )
    assert api.json()["items"][0]["state"] == "discarded"
    reason = api.json()["items"][0]["discard_reason"]
    assert reason.startswith("console:") and reason.endswith(": báo cáo gửi lại bằng tay")
    actions = signed_in.get(
        "/admin/messages", params={"route": "admin.discard"}, headers={"x-api-key": TEST_ADMIN_KEY}
    ).json()["items"]  # on the message log like the admin API's, naming the console session
    assert [a["client"].split(":")[0] for a in actions] == ["console"]


def test_configuration_hides_secrets_and_reports_errors_with_lines(
    signed_in: TestClient,  # type: ignore[type-arg]
    tmp_path: Path,
) -> None:
    page = signed_in.get("/admin/ui/config").text
    assert "find-citizen" in page and "Một cửa huyện A" in page
    assert "super-secret-token" not in page
    assert "•••" in page
    token = csrf_of(page)
    assert (
        "Cấu hình hợp lệ" in signed_in.post("/admin/ui/config/validate", data={"csrf": token}).text
    )
    config = tmp_path / "gateway.yaml"
    broken = config.read_text().replace("upstream: registry", "upstream: nowhere")
    config.write_text(broken)
    line = broken.splitlines().index("    upstream: nowhere") + 1
    for action in ("validate", "reload"):
        answer = signed_in.post(f"/admin/ui/config/{action}", data={"csrf": token})
        assert answer.status_code == 422
        assert f"{config}:{line}" in answer.text
        assert "no such upstream" in answer.text
    assert signed_in.post("/v1/find", json={}, headers=KEY).status_code == 200  # old one kept


def test_signature_upload_without_trust_says_so(signed_in: TestClient) -> None:  # type: ignore[type-arg]
    token = csrf_of(signed_in.get("/admin/ui/signatures").text)
    answer = signed_in.post(
        "/admin/ui/signatures",
        data={"csrf": token},
        files={"file": ("doc.edxml", b"<x/>", "application/xml")},
    )
    assert "Chưa cấu hình mục trust" in answer.text


def test_usage_report_and_csv(signed_in: TestClient) -> None:  # type: ignore[type-arg]
    signed_in.post("/v1/find", json={}, headers=KEY)
    signed_in.post("/v1/find", json={}, headers=KEY)
    dead_letter(signed_in)
    page = signed_in.get("/admin/ui/usage").text
    assert "Một cửa huyện A" in page
    month = time.strftime("%Y-%m", time.gmtime(time.time() + 7 * 3600))
    exported = signed_in.get(f"/admin/ui/usage.csv?month={month}")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    by_upstream = {row["upstream"]: row for row in rows}
    assert by_upstream["registry"]["exchanges"] == "2"
    assert by_upstream["registry"]["agency_name"] == "Một cửa huyện A"
    assert by_upstream["inbox"]["exchanges"] == "1"  # accepted once; its delivery is not counted
    assert signed_in.get("/admin/ui/usage.csv?month=2026-13").status_code == 400
