"""``lgsp-gateway edxml check FILE... [--json]``: check edXML before sending it.

For integrators: every broken rule of each file, with its rule code, element path and
message, as the gateway's ``schema: edxml`` routes would report it. A document message or
a status message is recognised by itself. Exit 0 when every file is valid (warnings are
listed), 1 when one is invalid, 2 when one cannot be checked at all (unreadable, not XML,
refused as hostile, or XML that is not edXML).
"""

from __future__ import annotations

import argparse
import sys
from typing import Literal, TextIO

import msgspec

from schemas import edxml
from schemas.edxml import errors
from schemas.edxml.mapping import HEADER_PATH, MESSAGE_HEADER_PATH

Kind = Literal["document", "status"]


class Issue(msgspec.Struct):
    rule: str
    path: str
    message: str


class FileReport(msgspec.Struct, omit_defaults=True):
    file: str
    verdict: Literal["valid", "invalid", "unusable"]
    kind: Kind | None = None
    issues: list[Issue] = []
    warnings: list[Issue] = []
    error: str | None = None
    """Why the file could not be checked (``unusable``)."""


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``edxml check`` in ``lgsp-gateway``'s subcommands."""
    group = subparsers.add_parser("edxml", help="check edXML documents before sending them")
    actions = group.add_subparsers(required=True, metavar="ACTION")
    check = actions.add_parser(
        "check", help="every broken rule: code, element path, message; exit 0, 1 or 2"
    )
    check.add_argument(
        "files", nargs="+", metavar="FILE", help="edXML documents or status messages"
    )
    check.add_argument("--json", action="store_true", help="the reports as JSON")
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    return run_check(args.files, as_json=args.json)


def run_check(files: list[str], *, as_json: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    reports = [check_file(name) for name in files]
    if as_json:
        out.write(msgspec.json.format(msgspec.json.encode(reports), indent=2).decode() + "\n")
    else:
        out.write("".join(_text(report) for report in reports))
    verdicts = {report.verdict for report in reports}
    return 2 if "unusable" in verdicts else 1 if "invalid" in verdicts else 0


def check_file(name: str) -> FileReport:
    """The report for one file: a document message, else a status message."""
    try:
        issues = edxml.validate(name)
        kind: Kind = "document"
        if any(i.path == f"{MESSAGE_HEADER_PATH}/StatusCode" for i in issues):
            kind, issues = "status", edxml.validate_status(name)
    except OSError as exc:
        return FileReport(name, "unusable", error=f"cannot read: {exc.strerror or exc}")
    except edxml.EdxmlMalformed as exc:
        return FileReport(name, "unusable", error=str(exc))
    except edxml.EdxmlUnsafe as exc:
        return FileReport(name, "unusable", error=f"refused: {exc} ({exc.reason})")
    if issues and issues[0].rule == errors.UNEXPECTED_ELEMENT and issues[0].path.count("/") == 1:
        return FileReport(name, "unusable", error=f"not edXML: {issues[0].message}")
    found = [Issue(i.rule, i.path, i.message) for i in issues]
    return FileReport(
        name, "invalid" if found else "valid", kind, found, [] if found else _warnings(name, kind)
    )


def _warnings(name: str, kind: Kind) -> list[Issue]:
    """What a valid file should still hear: its signature is not verified here."""
    if kind == "document":
        with edxml.parse(name) as document:
            signed = document.signature_present
    else:
        signed = edxml.parse_status(name).signature_present
    if not signed:
        return []
    return [
        Issue(
            "signature_not_verified",
            f"{HEADER_PATH}/Signature",
            f"the signature is not verified here: run lgsp-gateway verify {name}",
        )
    ]


def _text(report: FileReport) -> str:
    if report.verdict == "unusable":
        return f"{report.file}: cannot be checked: {report.error}\n"
    count = f", {len(report.issues)} issue(s)" if report.issues else ""
    lines = [f"{report.file}: {report.verdict} ({report.kind} message{count})"]
    lines += [f"  ERROR {i.rule} {i.path}: {i.message}" for i in report.issues]
    lines += [f"  WARN  {w.rule} {w.path}: {w.message}" for w in report.warnings]
    return "\n".join(lines) + "\n"
