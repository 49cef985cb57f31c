"""Every example in README.md, run verbatim against a real ``lgsp-gateway serve``.

An example is a ```sh block preceded by ``<!-- expect: ... -->`` saying what
it must produce: ``status=`` (HTTP status of its curl), ``exit=`` (exit code)
and ``contains="..."`` (repeatable). Only ports are changed (the gateway's and
the mock national systems'), so examples keep working whatever ports are free.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.support.config import DEFAULT_CONFIG, ROOT
from tests.support.processes import gateway_process
from tests.support.servers import free_port

README = (ROOT / "README.md").read_text(encoding="utf-8")
MOCK_PORTS = {
    9101: "LGSP_MOCK_DVCQG_PORT",
    9102: "LGSP_MOCK_POPULATION_PORT",
    9103: "LGSP_MOCK_AXIS_PORT",
}
EXAMPLE = re.compile(r"<!-- expect: (?P<expect>.*?) -->\n```sh\n(?P<code>.*?)```", re.DOTALL)
EXAMPLES = [(m["expect"], m["code"]) for m in EXAMPLE.finditer(README)]


def test_readme_has_examples_and_none_is_unmarked() -> None:
    assert len(EXAMPLES) >= 12
    sh_blocks = README.count("```sh\n")
    # The two-command block is checked separately (test_make_targets_...).
    assert sh_blocks == len(EXAMPLES) + 1


@pytest.fixture(scope="module")
def gateway_port(tmp_path_factory: pytest.TempPathFactory) -> object:
    port = free_port()
    with gateway_process(DEFAULT_CONFIG, port, env={"LGSP_PORT": str(port)}):
        yield port


@pytest.mark.processes
@pytest.mark.parametrize(("expect", "code"), EXAMPLES, ids=[str(i) for i in range(len(EXAMPLES))])
def test_readme_example(expect: str, code: str, gateway_port: int, tmp_path: Path) -> None:
    (tmp_path / ".curlrc").write_text('write-out = "\\n%{http_code}"\n')
    env = {**os.environ, "CURL_HOME": str(tmp_path)}
    command = code.replace("127.0.0.1:8080", f"127.0.0.1:{gateway_port}")
    for default, variable in MOCK_PORTS.items():  # conftest gives the mocks free ports
        command = command.replace(f"127.0.0.1:{default}", f"127.0.0.1:{os.environ[variable]}")
    result = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    output = result.stdout
    for item in shlex.split(expect):
        key, _, value = item.partition("=")
        if key == "status":
            assert output.rstrip().rsplit("\n", 1)[-1] == value, output
        elif key == "exit":
            assert result.returncode == int(value), result.stderr
        elif key == "contains":
            assert value in output, output
        else:
            raise AssertionError(f"unknown expectation {key!r} in README")


@pytest.mark.processes
def test_make_targets_are_the_two_readme_commands() -> None:
    assert "make run " in README and "make test " in README
    plan = subprocess.run(
        ["make", "-n", "run", "test"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "lgsp-gateway serve --config config/gateway.yaml" in plan
    assert "pytest" in plan and "mypy" in plan and "ruff check" in plan
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
