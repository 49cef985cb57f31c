"""The wheel (what the Docker image installs) carries everything the gateway needs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.config import ROOT

pytestmark = pytest.mark.processes  # `pip wheel` subprocess


def test_wheel_has_schemas_and_adapter_entry_points(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("lgsp_gateway-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        declared = archive.read(entry_points).decode()
    assert {
        "schemas/edxml/edxml.xsd",
        "schemas/edxml/edxml-types.xsd",
        "schemas/edxml/edxml-status.xsd",
        "schemas/population/population.wsdl",
    } <= names
    assert {
        "gateway/app.py",
        "adapters/stub.py",
        "adapters/dvcqg/mock.py",
        "adapters/population/mock.py",
        "adapters/document_axis/mock.py",
        "schemas/population/__init__.py",
        "gateway/console/templates/base.html",
        "gateway/console/templates/dashboard.html",
        "gateway/console/static/console.css",
    } <= names
    assert "lgsp-gateway = gateway.cli:main" in declared
    for adapter in (
        "http = adapters.http:HttpAdapter",
        "soap = adapters.soap:SoapAdapter",
        "stub = adapters.stub:StubAdapter",
        "dvcqg = adapters.dvcqg.adapter:DvcqgAdapter",
        "population = adapters.population.adapter:PopulationAdapter",
        "document_axis = adapters.document_axis.adapter:DocumentAxisAdapter",
        "dvcqg = adapters.dvcqg.plugin:PLUGIN",
        "population = adapters.population.plugin:PLUGIN",
        "document-axis = adapters.document_axis.plugin:PLUGIN",
    ):
        assert adapter in declared
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "USER lgsp" in dockerfile and "/health/live" in dockerfile
