"""A third-party adapter package works end to end with no change to the gateway's code.

``tests/thirdparty/landreg`` is a package as an outsider would write it against
the adapter SDK (``adapters/``): its own adapter, mock national system, error
code and personal field, declared by entry points in its own pyproject.toml.
It is installed with pip into a directory of its own (the other tests never see
it) that is put on a real gateway process's path, where it must be found like
the national packages that ship with the gateway.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.config import BASE_CONFIG, ROOT, TEST_ADMIN_KEY, TEST_KEY, write_config
from tests.support.processes import gateway_process
from tests.support.servers import free_port

pytestmark = pytest.mark.processes

PACKAGE = ROOT / "tests" / "thirdparty" / "landreg"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "landreg"
    shutil.copytree(PACKAGE, source)  # pip builds in place: keep the repository clean
    target = tmp_path_factory.mktemp("site")
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
    subprocess.run([*install, str(target), str(source)], check=True, capture_output=True)
    return target


def _environ(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def _cli(site: Path, *args: str) -> str:
    command = [sys.executable, "-m", "gateway", *args]
    done = subprocess.run(command, env=_environ(site), capture_output=True, text=True, check=True)
    return done.stdout


def test_the_command_line_knows_the_package(site: Path) -> None:
    assert "landreg" in _cli(site, "adapters")
    assert "landreg on 9199" in " ".join(_cli(site, "mock", "--help").split())


def test_its_adapter_mock_error_code_and_personal_field_work_end_to_end(
    site: Path, tmp_path: Path
) -> None:
    mock_port, port = free_port(), free_port()
    config = write_config(
        tmp_path,
        BASE_CONFIG
        + f"""
mocks:
  landreg: {{{{port: {mock_port}}}}}
upstreams:
  land: {{{{type: landreg, base_url: "http://127.0.0.1:{mock_port}"}}}}
routes:
  - id: parcels
    match: {{{{method: POST, path: /v1/land/parcels}}}}
    clients: [agency-a]
    upstream: land
    message_log: {{{{bodies: true}}}}
""",
    )
    with gateway_process(config, port, env={"PYTHONPATH": _environ(site)["PYTHONPATH"]}):
        base, key = f"http://127.0.0.1:{port}", {"X-API-Key": TEST_KEY}

        def lookup(body: object) -> httpx.Response:
            return httpx.post(f"{base}/v1/land/parcels", json=body, headers=key)

        found = lookup({"so_thua": "101", "chu_su_dung": "Lê Văn Tám"})
        assert found.status_code == 200, found.text
        assert found.json() == {"so_thua": "101", "dien_tich": 120.5, "khop": True}

        disputed = lookup({"so_thua": "202", "chu_su_dung": "Phạm Thị Hoa"})
        assert disputed.status_code == 409, disputed.text  # its own code, never a 500
        problem = disputed.json()
        assert problem["code"] == "parcel_disputed"
        assert problem["title"] == "The land parcel is under dispute"
        assert problem["errors"] == [
            {"path": "$.so_thua", "message": "under dispute at the land registry"}
        ]
        assert disputed.headers["x-lgsp-error-source"] == "gateway"

        invalid = lookup({"so_thua": "x"})
        assert invalid.status_code == 422 and invalid.json()["code"] == "schema_invalid"
        assert {e["path"] for e in invalid.json()["errors"]} == {"$.so_thua", "$.chu_su_dung"}
        assert lookup({"so_thua": "999", "chu_su_dung": "?"}).json()["code"] == "not_found"

        spec = httpx.get(f"{base}/schema/openapi.json").json()
        assert (
            "parcel_disputed"
            in spec["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        )

        export = httpx.get(
            f"{base}/admin/messages/export",
            params={"route": "parcels"},
            headers={"X-API-Key": TEST_ADMIN_KEY},
        )
        kept = [
            json.loads(base64.b64decode(json.loads(line)["request_body"]))
            for line in export.text.splitlines()
        ]
        assert {"so_thua": "101", "chu_su_dung": "L***"} in kept  # its personal field, masked
