"""Several keys per client, each with an optional end date: rotation without downtime."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.auth import hash_key
from gateway.cli import main

OLD, NEW, LATER = "key-old-0123456789", "key-new-0123456789", "key-later-0123456789"


def write(directory: Path) -> Path:
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date()
    path = directory / "gateway.yaml"
    path.write_text(
        f"""
clients:
  - id: agency-a
    name: A
    api_keys:
      - {{hash: {hash_key(OLD)}, not_after: {today - dt.timedelta(days=1)}}}
      - {{hash: {hash_key(NEW)}, not_after: {today + dt.timedelta(days=10)}}}
      - {hash_key(LATER)}
upstreams:
  echo: {{type: stub, operations: {{hello: {{reply: {{body: {{ok: true}}}}}}}}}}
routes:
  - {{id: hello, match: {{method: GET, path: /hello}}, clients: [agency-a], upstream: echo,
      operation: hello}}
""",
        encoding="utf-8",
    )
    return path


def test_a_key_past_its_end_date_is_refused_the_others_work(tmp_path: Path) -> None:
    with TestClient(create_app(str(write(tmp_path)))) as client:
        old = client.get("/hello", headers={"x-api-key": OLD})
        assert old.status_code == 401
        assert old.json()["detail"] == "unknown, expired or disabled API key"
        for key in (NEW, LATER):
            assert client.get("/hello", headers={"x-api-key": key}).status_code == 200


def test_config_check_warns_about_keys_ending_within_30_days(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", "--config", str(write(tmp_path))]) == 0
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == 2  # the expired key and the one ending in 10 days
    assert all(w.startswith("warning: client agency-a: key sha256:") for w in warnings)


def test_identity_config_errors_name_file_and_line(tmp_path: Path) -> None:
    from gateway.config.loader import ConfigInvalid, load_config

    path = tmp_path / "gateway.yaml"
    path.write_text(
        """
server:
  tls: {certificate: missing.pem, key: missing.key}
identity:
  forwarded_certificate: {header: x-client-cert, trusted_proxies: [not-an-address]}
clients:
  - id: a
    name: A
    require_certificate: true
    certificates: [{subject: CN=a, san: a.example.vn}]
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigInvalid) as invalid:
        load_config(str(path))
    messages = {(i.path, i.message) for i in invalid.value.issues}
    assert messages == {
        ("server.tls.certificate", "no such file: missing.pem"),
        ("server.tls.key", "no such file: missing.key"),
        (
            "identity.forwarded_certificate.trusted_proxies[0]",
            "'not-an-address' is not an address or CIDR block",
        ),
        ("clients[0].certificates[0]", "give exactly one of fingerprint, subject, san"),
    }
