"""Operator commands: ``lgsp-gateway verify FILE`` and ``lgsp-gateway trust check [CERT]``.

``verify`` exits 0 when the file's signatures are valid (with or without warnings), 1 when
invalid or unsigned, 2 when the input (or the trust store) cannot be used. ``trust check``
exists because certificates, OCSP and CRL failing with unclear errors are the largest
group of problems in X-Road-style exchanges: it lists the anchors with their validity and,
for a certificate, the path it builds, every check, and whether each OCSP responder and CRL
answers, in plain words. It exits 0 when everything it looked at is usable, 1 otherwise.

Wire both with ``add_commands(subparsers)``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import msgspec

if TYPE_CHECKING:  # the verifier's modules load signxml and pyHanko: only when a command runs
    from cryptography import x509

    from gateway.signatures.policy import SignaturePolicy, TrustSettings
    from gateway.signatures.result import VerificationResult
    from gateway.signatures.trust import TrustStore

DEFAULT_TRUST = os.environ.get("LGSP_TRUST_DIR", "config/trust")

_VERDICT_WORDS = {
    "vi": {
        "valid": "HỢP LỆ",
        "valid_with_warnings": "HỢP LỆ, CÓ CẢNH BÁO",
        "invalid": "KHÔNG HỢP LỆ",
        "unsigned": "KHÔNG CÓ CHỮ KÝ",
    },
    "en": {
        "valid": "VALID",
        "valid_with_warnings": "VALID WITH WARNINGS",
        "invalid": "INVALID",
        "unsigned": "UNSIGNED",
    },
}


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``verify`` and ``trust`` (with ``check``) to ``lgsp-gateway``'s subcommands."""
    verify_parser = subparsers.add_parser(
        "verify", help="verify the signatures of an edXML or PDF file"
    )
    verify_parser.add_argument("file", metavar="FILE", help="an .edxml/.xml or .pdf file")
    _trust_options(verify_parser)
    verify_parser.add_argument(
        "--policy",
        default="",
        metavar="KEY=VALUE,...",
        help="policy as in YAML, e.g. revocation=hard-fail,algorithms=strict "
        "(default: mode=required, revocation=soft-fail, algorithms=lenient)",
    )
    verify_parser.add_argument(
        "--signature", metavar="P7S", help="a detached CMS/PKCS#7 signature over FILE"
    )
    verify_parser.add_argument("--json", action="store_true", help="the full result as JSON")
    verify_parser.add_argument("--lang", choices=("vi", "en"), default="vi")
    verify_parser.add_argument(
        "--max-size",
        default="16MiB",
        metavar="SIZE",
        help="larger files are refused (exit 2): verifying holds ~8x the file in memory",
    )
    verify_parser.set_defaults(func=cmd_verify)

    trust = subparsers.add_parser("trust", help="diagnose the trust store, a certificate, OCSP/CRL")
    trust_commands = trust.add_subparsers(required=True, metavar="ACTION")
    check = trust_commands.add_parser(
        "check", help="list anchors; for CERT: the path, each check, OCSP/CRL reachability"
    )
    check.add_argument("cert", nargs="?", metavar="CERT", help="a PEM or DER certificate")
    _trust_options(check)
    check.add_argument("--lang", choices=("vi", "en"), default="en")
    check.set_defaults(func=cmd_trust_check)


def _trust_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        default=DEFAULT_TRUST,
        metavar="DIR",
        help=f"folder of trusted root certificates (default: $LGSP_TRUST_DIR or {DEFAULT_TRUST})",
    )
    parser.add_argument(
        "--intermediates", metavar="DIR", help="folder of intermediate CA certificates"
    )
    parser.add_argument(
        "--timeout", default="5s", metavar="DURATION", help="per OCSP/CRL request (default 5s)"
    )


def parse_policy(text: str) -> SignaturePolicy:
    """``revocation=off,algorithms=strict`` -> ``SignaturePolicy`` (the YAML keys and values)."""
    from gateway.signatures.policy import SignaturePolicy

    values: dict[str, object] = {"mode": "required"}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        values[key.strip()] = (
            value.strip().lower() in ("true", "yes") if key == "attachments" else value.strip()
        )
    return msgspec.convert(values, SignaturePolicy)


def cmd_verify(args: argparse.Namespace) -> int:
    return run_verify(
        args.file,
        trust_dir=args.trust,
        intermediates=args.intermediates,
        policy_text=args.policy,
        signature=args.signature,
        as_json=args.json,
        lang=args.lang,
        timeout=args.timeout,
        max_size=args.max_size,
    )


def run_verify(
    file: str,
    *,
    trust_dir: str = DEFAULT_TRUST,
    intermediates: str | None = None,
    policy_text: str = "",
    signature: str | None = None,
    as_json: bool = False,
    lang: str = "vi",
    timeout: str = "5s",
    max_size: str = "16MiB",
) -> int:
    from gateway.signatures.policy import TrustSettings, too_large
    from gateway.signatures.revocation import RevocationChecker
    from gateway.signatures.trust import TrustStore
    from gateway.signatures.verifier import UnusableInput, verify, verify_detached

    try:
        policy = parse_policy(policy_text)
        settings = msgspec.convert(
            {
                "anchors": trust_dir,
                "intermediates": intermediates,
                "fetch_timeout": timeout,
                "max_document_size": max_size,
            },
            TrustSettings,
        )
        trust = TrustStore.load(settings)
        refusal = too_large(Path(file).stat().st_size, settings)
        if refusal is not None:
            print(f"error: {file}: {refusal}", file=sys.stderr)
            return 2
        data = Path(file).read_bytes()
        detached = Path(signature).read_bytes() if signature else None
    except (msgspec.ValidationError, OSError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for problem in trust.problems:
        print(f"warning: {problem}", file=sys.stderr)

    async def run() -> VerificationResult:
        revocation = RevocationChecker(settings)
        try:
            if detached is not None:
                return await verify_detached(
                    data,
                    detached,
                    name=Path(file).name,
                    policy=policy,
                    trust=trust,
                    revocation=revocation,
                )
            media_type = "application/pdf" if file.lower().endswith(".pdf") else ""
            return await verify(data, media_type, policy=policy, trust=trust, revocation=revocation)
        finally:
            await revocation.aclose()

    try:
        result = asyncio.run(run())
    except UnusableInput as exc:
        print(f"error: {file}: {exc} ({exc.code})", file=sys.stderr)
        return 2
    if as_json:
        shown = msgspec.to_builtins(result)
        shown.pop("signed_content", None)  # the document itself: not a report
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(shown), indent=2).decode() + "\n")
    else:
        sys.stdout.write(report(result, file, lang))
    return 0 if result.verdict in ("valid", "valid_with_warnings") else 1


def report(result: VerificationResult, file: str, lang: str = "vi") -> str:
    """The result for a person: verdict first, then each signature and its findings."""
    words = _VERDICT_WORDS["vi" if lang == "vi" else "en"]
    lines = [f"{file}: {words[result.verdict]}"]
    if not result.signatures:
        lines += [f"  - {r.message(lang)}" for r in result.reasons]
    for signature in result.signatures:
        lines.append("")
        lines.append(f"[{signature.kind}] {signature.target}: {words[signature.verdict]}")
        if signature.signer is not None:
            lines.append(f"  signer   {signature.signer.subject}")
            lines.append(f"  serial   {signature.signer.serial}  ({signature.signer.key})")
        lines.append(
            f"  algorithm {signature.signature_algorithm} / digest {signature.digest_algorithm}"
        )
        when = signature.time_used.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        source = (
            f"timestamp by {signature.timestamp_authority}"
            if signature.time_source == "timestamp"
            else "verification time (no trusted timestamp)"
        )
        lines.append(f"  time     {when}, {source}")
        if signature.claimed_signing_time is not None:
            claimed = signature.claimed_signing_time.astimezone(dt.UTC).strftime(
                "%Y-%m-%d %H:%M:%SZ"
            )
            lines.append(f"  claimed  {claimed} (the signer's own claim, not used)")
        if signature.chain:
            lines.append("  path     " + " -> ".join(_cn(c.subject) for c in signature.chain))
        for info in signature.revocation:
            label = (
                info.status if info.source is None else f"{info.status} ({info.source} {info.url})"
            )
            lines.append(f"  revocation {_cn(info.certificate)}: {label}")
        if signature.modifications:
            lines.append(f"  changes  {signature.modifications}")
        for item in signature.reasons:
            mark = "ERROR" if item.severity == "error" else "WARN "
            lines.append(f"  {mark} {item.code}: {item.message(lang)}")
    return "\n".join(lines) + "\n"


def _cn(subject: str) -> str:
    for part in subject.split(","):
        if part.startswith("CN="):
            return part[3:]
    return subject


def cmd_trust_check(args: argparse.Namespace) -> int:
    return run_trust_check(
        args.cert,
        trust_dir=args.trust,
        intermediates=args.intermediates,
        timeout=args.timeout,
        lang=args.lang,
    )


def run_trust_check(
    cert_file: str | None,
    *,
    trust_dir: str = DEFAULT_TRUST,
    intermediates: str | None = None,
    timeout: str = "5s",
    lang: str = "en",
) -> int:
    from gateway.signatures.policy import TrustSettings
    from gateway.signatures.trust import TrustStore, load_certificates

    out, now = sys.stdout, dt.datetime.now(dt.UTC)
    try:
        settings = msgspec.convert(
            {"anchors": trust_dir, "intermediates": intermediates, "fetch_timeout": timeout},
            TrustSettings,
        )
        trust = TrustStore.load(settings)
        certs = load_certificates(Path(cert_file).read_bytes()) if cert_file else []
    except (msgspec.ValidationError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    healthy = _print_store(trust, trust_dir, intermediates, now, out)
    if not certs:
        return 0 if healthy else 1
    cert, *extra = certs
    return (
        0 if asyncio.run(_diagnose(cert, extra, trust, settings, now, lang, out)) and healthy else 1
    )


def _print_store(
    trust: TrustStore, trust_dir: str, intermediates: str | None, now: dt.datetime, out: TextIO
) -> bool:
    from gateway.signatures.trust import fingerprint, serial_of, subject_of

    healthy = bool(trust.anchors) and not trust.problems
    out.write(f"Trust anchors in {trust_dir}: {len(trust.anchors)}\n")
    if not trust.anchors:
        out.write(
            "  none: no signature can be trusted. Put the roots you trust here (PEM or DER),\n"
            "  e.g. the Ban Cơ yếu Chính phủ root and the NEAC root; compare their\n"
            "  fingerprints with the issuers' publications.\n"
        )
    for anchor in trust.anchors:
        state, ok = _validity(anchor, now)
        healthy &= ok
        out.write(f"  [{'OK' if ok else '!!'}] {subject_of(anchor)}\n")
        out.write(f"       serial {serial_of(anchor)}, {state}\n")
        out.write(f"       sha256 {fingerprint(anchor)}\n")
    if intermediates:
        out.write(f"Intermediate CAs in {intermediates}: {len(trust.intermediates)}\n")
        for cert in trust.intermediates:
            state, _ = _validity(cert, now)
            out.write(f"  {subject_of(cert)}: {state}\n")
    for problem in trust.problems:
        out.write(f"  [!!] {problem}\n")
    return healthy


def _validity(cert: x509.Certificate, now: dt.datetime) -> tuple[str, bool]:
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    window = f"valid {start:%Y-%m-%d} to {end:%Y-%m-%d}"
    if now < start:
        return f"{window}: NOT YET VALID", False
    if now > end:
        return f"{window}: EXPIRED {(now - end).days} days ago", False
    days = (end - now).days
    return f"{window} ({days} days left{', renew soon' if days < 90 else ''})", True


async def _diagnose(
    cert: x509.Certificate,
    extra: Sequence[x509.Certificate],
    trust: TrustStore,
    settings: TrustSettings,
    now: dt.datetime,
    lang: str,
    out: TextIO,
) -> bool:
    from gateway.signatures.result import MESSAGES
    from gateway.signatures.revocation import RevocationChecker
    from gateway.signatures.trust import serial_of, subject_of

    out.write(f"\nCertificate: {subject_of(cert)}\n  serial {serial_of(cert)}\n")
    result = trust.build_path(cert, extra, at=now)
    out.write("Path:\n")
    for index, item in enumerate(result.path, 1):
        anchor = " [trust anchor]" if trust.anchor_for(item) is not None else ""
        out.write(f"  {index}. {subject_of(item)}{anchor}\n")
    out.write("Checks:\n")
    for check in result.checks:
        mark = {"pass": "OK  ", "warn": "WARN", "fail": "FAIL"}[check.status]
        line = f"  [{mark}] {check.certificate}: {check.message}"
        if check.code and lang == "vi":
            line += f"\n         {MESSAGES[check.code][0]}"
        out.write(line + "\n")
    usable = result.ok
    revocation = RevocationChecker(settings)
    try:
        out.write("Revocation sources:\n")
        pairs = list(itertools.pairwise(result.path))
        if not pairs:
            out.write("  not checked: the issuer of this certificate is unknown\n")
            usable = False
        for subject_cert, issuer in pairs:
            out.write(f"  {subject_of(subject_cert)}:\n")
            probes = await revocation.probe(subject_cert, issuer)
            if not probes:
                out.write(
                    "    no OCSP responder or CRL named in the certificate, and no override "
                    "configured: its revocation cannot be checked\n"
                )
                usable = False
            if probes and not any(p.usable for p in probes):
                usable = False
            for probe in probes:
                kind = probe.kind.upper().ljust(4)
                if probe.usable:
                    out.write(
                        f"    {kind} {probe.url}: reachable, answered {probe.status!r} in "
                        f"{probe.elapsed_ms:.0f} ms ({probe.detail})\n"
                    )
                    if probe.status == "revoked":
                        usable = False
                elif probe.reachable:
                    out.write(
                        f"    {kind} {probe.url}: reachable, but the answer is not usable: "
                        f"{probe.detail}\n"
                    )
                else:
                    out.write(
                        f"    {kind} {probe.url}: NOT reachable: {probe.detail}. Check that this "
                        "machine may reach the host (firewall, proxy, DNS).\n"
                    )
    finally:
        await revocation.aclose()
    verdict = "usable for signing" if usable else "NOT usable for signing (see above)"
    out.write(f"Conclusion: {verdict}\n")
    return usable


__all__ = ["add_commands", "parse_policy", "report", "run_trust_check", "run_verify"]
