"""The console and the API explorer in a real browser: Debian's Chromium, driven by Playwright.

Screenshots go to ``$LGSP_SCREENSHOTS`` (default: a folder under the system's temp dir),
for people to look at; ``docs/console.png`` is one of them. Chromium is not optional:
without it these tests fail and say how to install it (``.ci/run`` does).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from tests.support.config import TEST_ADMIN_KEY, TEST_KEY
from tests.support.console import console_config
from tests.support.servers import serve_in_thread

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(os.environ.get("LGSP_SCREENSHOTS", Path(tempfile.gettempdir()) / "lgsp-screens"))
KEY = {"x-api-key": TEST_KEY}

pytestmark = pytest.mark.processes  # Chromium is an OS process (the gateway runs in a thread)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The gateway with uvicorn on a free port, some traffic, and one dead letter."""
    config = console_config(tmp_path)
    with serve_in_thread(create_app(str(config))) as base:
        with httpx.Client(base_url=base, headers=KEY) as client:
            client.post("/v1/find", json={"so_dinh_danh": "001203012345"})
            client.post("/v1/find", json={}, headers={"x-stub-fault": "error"})
            client.post("/v1/find", json={"so_dinh_danh": "079195001234"})
            message_id = client.post("/v1/reports", json={"n": 1}).json()["message_id"]
            deadline = time.monotonic() + 10
            while client.get(f"/v1/messages/{message_id}").json()["state"] != "dead":
                assert time.monotonic() < deadline, "the report never went dead"
                time.sleep(0.05)
        yield base, config


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def signed_in(browser: Any, base: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/admin/ui")
    assert page.url.endswith("/admin/ui/login")
    page.fill("#key", "not the key")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text() == "Khóa quản trị không đúng."
    page.fill("#key", TEST_ADMIN_KEY)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/admin/ui")
    return page


def test_dashboard_and_log_search(browser: Any, gateway: tuple[str, Path]) -> None:
    base, _ = gateway
    page = signed_in(browser, base)
    assert "find-citizen" in page.inner_text("#traffic")
    assert "33.3 %" in page.inner_text("#traffic")  # one in three failed
    assert page.locator("#dead tbody tr").count() == 1
    shot(page, "dashboard")

    page.click("#lang")
    assert page.locator("h1").inner_text() == "Dashboard"
    page.click("text=Message log")
    page.fill("input[name=route]", "find-citizen")
    page.fill("input[name=status]", "502")
    page.click("#search button[type=submit]")
    rows = page.locator("#records tbody tr")
    assert rows.count() == 1
    assert "upstream_error" in rows.first.inner_text()
    shot(page, "messages")
    page.fill("input[name=status]", "200")
    page.click("#search button[type=submit]")
    assert page.locator("#records tbody tr").count() == 2
    page.locator("#records a").first.click()
    body = page.locator("pre.body").first.inner_text()
    assert "so_dinh_danh" in body and "001203012345" not in body
    shot(page, "record")
    page.go_back()
    page.click("text=Verify the chains")
    assert page.inner_text("#chains-verdict") == "Every log chain verifies."


def test_retry_a_dead_letter(browser: Any, gateway: tuple[str, Path]) -> None:
    base, _ = gateway
    page = signed_in(browser, base)
    page.click("header nav >> text=Chuyển phát")
    delivery = page.locator("section.delivery")
    assert delivery.count() == 1
    assert "connect" in delivery.inner_text().lower() or "unavailable" in delivery.inner_text()
    delivery.locator("button.retry").click()
    assert page.inner_text("#notice") == "Đã đưa lại vào hàng đợi: 1"
    shot(page, "retried")


def test_reload_a_broken_config_shows_its_errors(browser: Any, gateway: tuple[str, Path]) -> None:
    base, config = gateway
    page = signed_in(browser, base)
    page.click("header nav >> text=Cấu hình")
    assert "super-secret-token" not in page.content()
    broken = config.read_text() + "limits: {timeout: soon}\n"
    config.write_text(broken)
    page.click("#reload")
    assert "cấu hình đang chạy được giữ nguyên" in page.inner_text("#outcome")
    issues = page.inner_text("#issues")
    assert f"{config}:{len(broken.splitlines())}" in issues
    assert "limits.timeout" in issues
    assert "expected a duration" in issues
    shot(page, "config-errors")
    answer = httpx.post(f"{base}/v1/find", json={}, headers=KEY)
    assert answer.status_code == 200  # the running configuration was kept


def test_sign_out(browser: Any, gateway: tuple[str, Path]) -> None:
    base, _ = gateway
    page = signed_in(browser, base)
    page.click("text=Đăng xuất")
    page.wait_for_url(f"{base}/admin/ui/login")
    page.goto(f"{base}/admin/ui/messages")
    assert page.url.endswith("/admin/ui/login")


def test_api_explorer_tries_a_route_with_a_key(browser: Any, gateway: tuple[str, Path]) -> None:
    base, _ = gateway
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    external: list[str] = []
    page.on(
        "request",
        lambda request: external.append(request.url) if not request.url.startswith(base) else None,
    )
    page.goto(f"{base}/schema")
    page.wait_for_selector(".opblock")
    page.click("button.authorize")
    page.fill(".modal-ux input[type=text], .modal-ux input[type=password]", TEST_KEY)
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.close-modal")
    page.click("#operations-registry-find-citizen .opblock-summary")
    page.click("#operations-registry-find-citizen button.try-out__btn")
    page.click("#operations-registry-find-citizen button.execute")
    status = page.locator(
        "#operations-registry-find-citizen .live-responses-table tr.response td.response-col_status"
    )
    status.first.wait_for()
    assert status.first.inner_text().strip().startswith("200")
    shot(page, "explorer")
    assert [url for url in external if not url.startswith("data:")] == []
