"""Configuration: every error with file, line and key path; includes; env; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.units import seconds, size_bytes
from gateway.cli import main
from gateway.config.loader import ConfigInvalid, load_config
from tests.support.config import BASE_CONFIG, DEFAULT_CONFIG, write_config

MOCK_UPSTREAM = """
upstreams:
  mock-a:
    type: stub
    operations: {{op: {{reply: {{body: {{ok: true}}}}}}}}
"""


def at(path: Path, needle: str, occurrence: int = 1) -> str:
    """``FILE:LINE`` of the ``occurrence``-th line containing ``needle``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    numbers = [n for n, line in enumerate(lines, start=1) if needle in line]
    return f"{path}:{numbers[occurrence - 1]}"


def issues_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigInvalid) as caught:
        load_config(str(path), environ or {})
    return [str(issue) for issue in caught.value.issues]


def test_default_config_is_valid() -> None:
    loaded = load_config(str(DEFAULT_CONFIG))
    assert {r.id for r in loaded.config.routes} >= {
        "population-citizen-lookup",
        "dvcqg-dossier-sync",
        "documents-send",
    }
    assert len(loaded.files) == 4  # main file + one per national system


def test_every_error_is_reported_with_file_line_and_key(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        BASE_CONFIG
        + MOCK_UPSTREAM
        + """
server:
  port: eighty
  colour: blue
routes:
  - id: r1
    match: {{method: FETCH, path: /x}}
    clients: [agency-a]
    upstream: mock-a
    timeout: 5 seconds
""",
    )
    found = issues_of(path)
    assert f"{at(path, 'port: eighty')}: server.port: Expected `int`, got `str`" in found
    assert any(i.startswith(f"{at(path, 'colour')}: server.colour: unknown key") for i in found)
    assert any(i.startswith(f"{at(path, 'FETCH')}: routes[0].match.method:") for i in found)
    assert (
        f"{at(path, '5 seconds')}: routes[0].timeout: expected a duration such as 250ms, 5s, 2m, 1h or 30d"
        in found
    )
    assert len(found) == 4


def test_references_are_checked(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        BASE_CONFIG
        + MOCK_UPSTREAM
        + """
routes:
  - id: r1
    match: {{method: GET, path: "/x/{{id}}"}}
    clients: [agency-a, agency-z]
    upstream: nowhere
    request: {{schema: population.NoSuchThing}}
  - id: r1
    match: {{method: GET, path: "/x/{{other}}"}}
    clients: ["*"]
    upstream: mock-a
""",
    )
    found = issues_of(path)
    text = "\n".join(found)
    assert f"{at(path, 'agency-z')}: routes[0].clients[1]: no such client" in text
    assert f"{at(path, 'nowhere')}: routes[0].upstream: no such upstream" in text
    assert (
        "routes[0].request.schema: schemas.population has no msgspec Struct named 'NoSuchThing'"
        in text
    )
    assert f"{at(path, 'id: r1', 2)}: routes[1].id: duplicate route id 'r1'" in text
    assert "routes[1].match: GET /x/{id} is already served by route 'r1'" in text


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, BASE_CONFIG + "server:\n  port: 8080\n  port: 9090\n")
    assert issues_of(path) == [
        f"{at(path, 'port: 9090')}: server.port: duplicate key (each key may appear once)"
    ]


def test_environment_interpolation(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        BASE_CONFIG + 'server:\n  port: ${{PORT:-8081}}\n  host: "${{HOST}}"\n',
    )
    loaded = load_config(str(path), {"HOST": "0.0.0.0"})
    assert loaded.config.server.port == 8081  # a plain scalar keeps its YAML type
    assert loaded.config.server.host == "0.0.0.0"
    assert load_config(str(path), {"HOST": "h", "PORT": "9000"}).config.server.port == 9000
    assert issues_of(path) == [
        f"{at(path, 'HOST')}: server.host: environment variable HOST is not set (no default given)"
    ]


def test_included_files_report_their_own_lines(tmp_path: Path) -> None:
    main_file = write_config(tmp_path, BASE_CONFIG + "include: [agencies/*.yaml]\n")
    write_config(
        tmp_path,
        MOCK_UPSTREAM
        + """
routes:
  - id: so-tu-phap
    match: {{method: GET, path: /tu-phap}}
    clients: [agency-a]
    upstream: mock-a
    max_body_size: lots
""",
        name="agencies/tu-phap.yaml",
    )
    write_config(tmp_path, "server: {{port: 1}}\n", name="agencies/sneaky.yaml")
    found = issues_of(main_file)
    included = tmp_path / "agencies" / "tu-phap.yaml"
    assert (
        f"{at(included, 'lots')}: routes[0].max_body_size: expected a size such as 512KiB, 20MiB or 1GB"
        in found
    )
    sneaky = tmp_path / "agencies" / "sneaky.yaml"
    assert (
        f"{at(sneaky, 'server')}: server: an included file may only hold: clients, upstreams, routes, services"
        in found
    )


def test_include_merges_sections(tmp_path: Path) -> None:
    main_file = write_config(tmp_path, BASE_CONFIG + MOCK_UPSTREAM + "include: [more.yaml]\n")
    write_config(
        tmp_path,
        """
routes:
  - {{id: a, match: {{method: GET, path: /a}}, clients: ["*"], upstream: mock-a}}
""",
        name="more.yaml",
    )
    loaded = load_config(str(main_file), {})
    assert [r.id for r in loaded.config.routes] == ["a"]


def test_adapter_settings_are_typed(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        BASE_CONFIG
        + """
upstreams:
  civil-status:
    type: http
    base_url: ftp://ho-tich.example
    timeout_seconds: 5
  other:
    type: carrier-pigeon
""",
    )
    found = issues_of(path)
    assert (
        f"{at(path, 'ftp:')}: upstreams.civil-status.base_url: expected an http:// or https:// URL"
        in found
    )
    assert any(
        i.startswith(
            f"{at(path, 'timeout_seconds')}: upstreams.civil-status.timeout_seconds: unknown key"
        )
        for i in found
    )
    assert any(
        i.startswith(
            f"{at(path, 'carrier-pigeon')}: upstreams.other.type: unknown adapter type 'carrier-pigeon'"
        )
        for i in found
    )


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "clients:\n  - id: a\n   name: broken\n")
    (issue,) = issues_of(path)
    assert issue.startswith(f"{path}:3: (top level): not valid YAML")


def test_units() -> None:
    assert seconds("250ms") == 0.25
    assert seconds("2m") == 120
    assert size_bytes("20MiB") == 20 * 1024 * 1024
    assert size_bytes("1GB") == 10**9


def test_cli_config_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(str(DEFAULT_CONFIG)).config
    assert main(["config", "check", "--config", str(DEFAULT_CONFIG)]) == 0
    counts = f"{len(config.upstreams)} upstreams, {len(config.routes)} routes"
    assert f"OK (2 clients, {counts}" in capsys.readouterr().out

    bad = write_config(tmp_path, BASE_CONFIG + "server: {{port: 0}}\nlogging: {{level: loud}}\n")
    assert main(["config", "check", "--config", str(bad)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"{at(bad, 'port: 0')}: server.port: Expected `int` >= 1")
    assert err[1].startswith(
        f"{at(bad, 'loud')}: logging.level: 'loud' is not one of: debug, info, warning, error"
    )
    assert err[2] == f"{bad}: 2 error(s)"


def test_cli_config_check_asks_adapters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(
        tmp_path,
        BASE_CONFIG
        + """
upstreams:
  m:
    type: stub
    operations:
      op: {{reply: {{body_file: missing.json}}}}
""",
    )
    assert main(["config", "check", "--config", str(path)]) == 1
    assert f"{at(path, '  m:')}: upstreams.m: cannot start:" in capsys.readouterr().err


def test_cli_routes_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routes", "--config", str(DEFAULT_CONFIG)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "METHOD", "PATH", "SERVICE", "CLIENTS", "UPSTREAM", "SCHEMA"]
    lookup = next(line for line in lines if line.startswith("population-citizen-lookup"))
    assert lookup.split() == [
        "population-citizen-lookup",
        "POST",
        "/v1/population/citizens/lookup",
        "population-citizens",
        "motcua-demo",
        "population",
        "(lookup)",
        "population.CitizenLookupRequest",
    ]


def test_cli_config_schema_types_upstreams_by_adapter(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    upstream = schema["$defs"]["GatewayConfig"]["properties"]["upstreams"]["additionalProperties"]
    types = {
        schema["$defs"][v["$ref"].rsplit("/", 1)[1]]["properties"]["type"]["const"]
        for v in upstream["oneOf"]
    }
    assert types >= {"http", "soap", "stub"}
    route = schema["$defs"]["Route"]
    assert set(route["required"]) == {"id", "match", "upstream", "clients"}


def test_cli_keygen_prints_a_key_and_its_hash(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.auth import hash_key

    assert main(["keygen"]) == 0
    out = capsys.readouterr().out.splitlines()
    key = out[0].split()[1]
    assert out[1].split()[1] == hash_key(key)


@pytest.mark.processes
def test_python_dash_m_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "routes", "--config", str(DEFAULT_CONFIG)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "documents-send" in result.stdout


def test_storage_url_must_name_a_supported_database(tmp_path: Path) -> None:
    path = write_config(tmp_path, BASE_CONFIG + 'storage: {{url: "mysql://db/lgsp"}}\n')
    (issue,) = issues_of(path)
    assert issue == (
        f"{at(path, 'mysql')}: storage.url: expected sqlite:///FILE or "
        "postgresql://user@host:port/database"
    )


def test_verifying_routes_need_a_trust_section(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        BASE_CONFIG
        + MOCK_UPSTREAM
        + """
routes:
  - id: r
    match: {{method: POST, path: /r}}
    clients: ["*"]
    upstream: mock-a
    verify_signatures: required
""",
    )
    (issue,) = issues_of(path)
    assert issue.startswith(f"{at(path, 'verify_signatures')}: routes[0].verify_signatures:")
    assert "needs a `trust` section" in issue


def test_an_async_route_must_finish_within_the_delivery_lease(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        BASE_CONFIG
        + MOCK_UPSTREAM
        + """
delivery: {{lease: 30s}}
routes:
  - id: r
    match: {{method: POST, path: /r}}
    clients: ["*"]
    upstream: mock-a
    delivery: async
    timeout: 45s
""",
    )
    (issue,) = issues_of(path)
    assert issue.startswith(f"{at(path, 'timeout: 45s')}: routes[0].timeout:")
    assert "shorter than delivery.lease (30s)" in issue
