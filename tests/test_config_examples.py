"""``config/examples/``: every example is a config ``lgsp-gateway config check`` accepts.

Secrets in the examples come from the environment with no default, so the
check runs with a dummy value for each such variable (as an operator's
environment would give). The SMS gateway example also runs end to end: the
gateway serves it unchanged and forwards to a small upstream on loopback.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from gateway.app import create_app
from gateway.cli import main
from tests.support.config import MOTCUA_KEY, ROOT
from tests.support.servers import lifespan, request_body, serve_in_thread

EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.yaml"))
SYSTEMS = {"civil-status", "judicial-records", "business-registry", "postal-service",
           "sms-gateway", "reporting"}  # fmt: skip
REQUIRED_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def secrets_of(example: Path) -> dict[str, str]:
    """A dummy value for every ``${VAR}`` the example has no default for."""
    names = REQUIRED_ENV.findall(example.read_text(encoding="utf-8"))
    return {name: f"dummy-{name.lower()}" for name in names}


def test_there_is_one_example_per_system_and_a_readme() -> None:
    assert {path.stem for path in EXAMPLES} == SYSTEMS
    readme = (ROOT / "config" / "examples" / "README.md").read_text(encoding="utf-8")
    for system in SYSTEMS:
        assert f"{system}.yaml" in readme


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_passes_config_check(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in secrets_of(example).items():
        monkeypatch.setenv(name, value)
    assert main(["config", "check", "--config", str(example)]) == 0, capsys.readouterr().err
    assert ": OK (" in capsys.readouterr().out


def test_example_secrets_must_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    example = ROOT / "config" / "examples" / "sms-gateway.yaml"
    monkeypatch.delenv("SMS_PASSWORD", raising=False)
    assert main(["config", "check", "--config", str(example)]) == 1
    assert "SMS_PASSWORD is not set" in capsys.readouterr().err


class SmsProvider:
    """A brandname SMS provider on loopback: records each call, answers a message id."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        body = await request_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.calls.append((scope["method"], scope["path"], headers, body))
        answer = msgspec.json.encode({"ma_tin": f"SMS-{len(self.calls)}", "trang_thai": "DA_GUI"})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})


def test_sms_gateway_example_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    example = ROOT / "config" / "examples" / "sms-gateway.yaml"
    provider = SmsProvider()
    with serve_in_thread(provider) as upstream:
        monkeypatch.setenv("SMS_BASE_URL", upstream)
        monkeypatch.setenv("SMS_PASSWORD", "sms-secret-1")
        monkeypatch.setenv("LGSP_STORAGE_URL", f"sqlite:///{tmp_path / 'gateway.db'}")
        app = create_app(str(example))
        message = {"phone": "0912345678", "message": "Hồ sơ của ông/bà đã có kết quả"}
        headers = {"X-API-Key": MOTCUA_KEY, "Idempotency-Key": "sms-0001"}
        with serve_in_thread(app) as base, httpx.Client(base_url=base) as client:
            sent = client.post("/v1/sms/messages", json=message, headers=headers)
            again = client.post("/v1/sms/messages", json=message, headers=headers)
            state = client.get("/v1/sms/messages/SMS-1", headers={"X-API-Key": MOTCUA_KEY})
            anonymous = client.post("/v1/sms/messages", json=message)
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"ma_tin": "SMS-1", "trang_thai": "DA_GUI"}
    assert again.json() == sent.json()  # answered from the store: one SMS, not two
    assert state.status_code == 200, state.text
    assert anonymous.status_code == 401
    (post_method, post_path, post_headers, post_body), (get_method, get_path, _, _) = provider.calls
    assert (post_method, post_path) == ("POST", "/api/v1/sms/send")
    assert (get_method, get_path) == ("GET", "/api/v1/sms/SMS-1")
    assert msgspec.json.decode(post_body) == message
    assert post_headers["x-sms-password"] == "sms-secret-1"
    assert post_headers["x-sms-brandname"] == "UBND TINH"
    assert "x-api-key" not in post_headers  # the agency's own key never travels upstream
