"""Reason codes, messages, the summary header, and the policy Structs as YAML sees them."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import msgspec
import pytest

from adapters.units import seconds
from gateway.signatures import MESSAGES, SignaturePolicy, TrustSettings, VerificationResult
from gateway.signatures.result import reason, verdict_of, worst

PACKAGE = Path(__file__).resolve().parent.parent / "gateway" / "signatures"


def test_every_code_has_both_messages() -> None:
    for code, (vi, en) in MESSAGES.items():
        assert code.islower() and " " not in code
        assert vi.strip() and en.strip() and vi != en, code


def test_every_code_used_in_the_package_has_messages() -> None:
    used = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "reason"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                used.add(node.args[0].value)
    assert used and used <= set(MESSAGES)
    required = {
        "digest_mismatch",
        "bad_signature",
        "untrusted_root",
        "expired",
        "not_yet_valid",
        "revoked",
        "revocation_unknown",
        "key_usage",
        "weak_algorithm",
        "modified_after_signing",
    }
    assert required <= set(MESSAGES)
    with pytest.raises(KeyError):
        reason("no_such_code")


def test_verdicts() -> None:
    assert verdict_of([]) == "valid"
    assert verdict_of([reason("weak_algorithm", "warning")]) == "valid_with_warnings"
    assert verdict_of([reason("weak_algorithm", "warning"), reason("expired")]) == "invalid"
    assert worst(["valid", "unsigned", "valid_with_warnings"]) == "unsigned"
    assert worst([]) == "unsigned"


def test_summary_is_one_ascii_header_line() -> None:
    result = VerificationResult(
        verdict="valid_with_warnings",
        accepted=True,
        media_type="application/xml",
        reasons=[reason("weak_algorithm", "warning"), reason("revocation_unknown", "warning")],
        signer_subject='CN=Nguyễn Văn "An";\r\nX-Evil: 1',
        signer_serial="1A2B",
        time_used=dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=7))),
        time_source="verification_time",
    )
    line = result.summary()
    line.encode("ascii")
    assert "\r" not in line and "\n" not in line and '"An"' not in line
    assert line.startswith("valid_with_warnings; reasons=revocation_unknown,weak_algorithm;")
    assert "time=2026-11-22T03:00:00Z" in line


def test_policy_structs_read_like_the_rest_of_the_config() -> None:
    policy = msgspec.convert(
        {"mode": "required", "revocation": "hard-fail", "algorithms": "strict"}, SignaturePolicy
    )
    assert policy.mode == "required" and policy.attachments
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert({"mode": "required", "strict": True}, SignaturePolicy)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"revocation": "sometimes"}, SignaturePolicy)
    with pytest.raises(TypeError):
        SignaturePolicy("required")  # type: ignore[misc]  # kw_only

    trust = msgspec.convert(
        {"anchors": "trust/anchors", "cache_ttl": "5m", "ocsp_overrides": {"*": "http://mirror"}},
        TrustSettings,
    )
    assert seconds(trust.cache_ttl) == 300 and seconds(trust.fetch_timeout) == 5
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"anchors": "a", "cache_ttl": "5 minutes"}, TrustSettings)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({}, TrustSettings)  # anchors are never implicit
    schema = msgspec.json.schema(TrustSettings)
    assert "anchors" in str(schema)
