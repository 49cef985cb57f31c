"""Signature verification cost: verifications per second beside the raw cryptography.

Run: ``.venv/bin/python bench/signatures.py [--seconds 2]``. Builds a throwaway PKI (the
tests' ``tests/support/signing_pki.py``), signs a 10 KB and a 5 MB edXML document (rsa-sha256,
exclusive c14n) and a one-page PDF (PAdES), then measures in this one process:

- full ``verify()`` per document, revocation ``off`` (local work only), and for the 10 KB
  document also with revocation ``soft-fail`` against a loopback OCSP responder whose
  answers are cached (the steady state of a running gateway);
- the raw floor for the same bytes: SHA-256 of the document, one RSA-2048 PKCS#1 v1.5
  verify, one ECDSA P-256 verify.

It prints the figures and the ratios (how many times the floor a verification costs) and
writes them to ``bench/results/signatures.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa  # noqa: E402

from gateway.signatures import (  # noqa: E402
    RevocationChecker,
    SignaturePolicy,
    TrustSettings,
    TrustStore,
    verify,
)
from tests.support.servers import free_port, serve_in_thread  # noqa: E402
from tests.support.signed_documents import blank_pdf, edxml, sign_edxml, sign_pdf  # noqa: E402
from tests.support.signing_pki import SigningPKI  # noqa: E402


def rate(function: Callable[[], object], seconds: float) -> tuple[float, int]:
    """(operations per second, operations) over at least ``seconds`` (and 3 operations)."""
    function()  # warm
    count, started = 0, time.perf_counter()
    while True:
        function()
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and count >= 3:
            return count / elapsed, count


async def arate(function: Callable[[], Awaitable[object]], seconds: float) -> tuple[float, int]:
    await function()
    count, started = 0, time.perf_counter()
    while True:
        await function()
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds and count >= 3:
            return count / elapsed, count


def raw_costs(data: bytes, seconds: float) -> dict[str, float]:
    """Microseconds for SHA-256 of ``data``, one RSA-2048 and one ECDSA P-256 verify."""
    rsa_key = rsa.generate_private_key(65537, 2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    message = b"signed info" * 40
    rsa_sig = rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    ec_sig = ec_key.sign(message, ec.ECDSA(hashes.SHA256()))

    def sha() -> None:
        digest = hashes.Hash(hashes.SHA256())
        digest.update(data)
        digest.finalize()

    return {
        "sha256_us": 1e6 / rate(sha, seconds)[0],
        "rsa2048_verify_us": 1e6
        / rate(
            lambda: rsa_key.public_key().verify(
                rsa_sig, message, padding.PKCS1v15(), hashes.SHA256()
            ),
            seconds,
        )[0],
        "ecdsa_p256_verify_us": 1e6
        / rate(
            lambda: ec_key.public_key().verify(ec_sig, message, ec.ECDSA(hashes.SHA256())),
            seconds,
        )[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="lgsp-sig-bench-"))
    port = free_port()
    pki = SigningPKI(directory, port)
    signer = pki.issue("Bench Signer")
    small = sign_edxml(edxml(filler=9_000), signer)
    large = sign_edxml(edxml(filler=5 * 1024 * 1024), signer)
    pdf = sign_pdf(blank_pdf(), signer)
    settings = TrustSettings(anchors=str(pki.anchors), fetch_timeout="2s")
    trust = TrustStore.load(settings)
    cases = [
        ("edXML 10 KB", small, "application/xml", "off"),
        ("edXML 10 KB, OCSP cached", small, "application/xml", "soft-fail"),
        ("edXML 5 MB", large, "application/xml", "off"),
        ("PDF (PAdES)", pdf, "application/pdf", "off"),
    ]
    results = []

    async def run_all() -> None:
        checker = RevocationChecker(settings)
        try:
            for label, data, media_type, revocation in cases:
                policy = SignaturePolicy(revocation=revocation)  # type: ignore[arg-type]

                async def once(
                    data: bytes = data,
                    media_type: str = media_type,
                    policy: SignaturePolicy = policy,
                ) -> object:
                    result = await verify(
                        data, media_type, policy=policy, trust=trust, revocation=checker
                    )
                    assert result.verdict == "valid", result.reasons
                    return result

                per_second, count = await arate(once, args.seconds)
                floor = raw_costs(data, min(args.seconds, 1.0))
                verify_us = 1e6 / per_second
                crypto_floor = floor["sha256_us"] + floor["rsa2048_verify_us"]
                results.append(
                    {
                        "case": label,
                        "bytes": len(data),
                        "verifications_per_s": per_second,
                        "verify_us": verify_us,
                        "runs": count,
                        **floor,
                        "ratio_to_sha256_plus_rsa": verify_us / crypto_floor,
                    }
                )
        finally:
            await checker.aclose()

    with serve_in_thread(pki.app(), port=port):
        asyncio.run(run_all())

    header = (
        f"{'case':26} {'size':>9} {'verif/s':>9} {'µs/verify':>11} {'sha256 µs':>10} "
        f"{'rsa µs':>7} {'ecdsa µs':>9} {'x floor':>8}"
    )
    print(header)
    for row in results:
        print(
            f"{row['case']:26} {row['bytes']:>9,} {row['verifications_per_s']:>9,.1f} "
            f"{row['verify_us']:>11,.0f} {row['sha256_us']:>10,.1f} "
            f"{row['rsa2048_verify_us']:>7,.1f} {row['ecdsa_p256_verify_us']:>9,.1f} "
            f"{row['ratio_to_sha256_plus_rsa']:>8,.1f}"
        )
    print("x floor: verify time / (SHA-256 of the same bytes + one RSA-2048 verify)")
    out = ROOT / "bench" / "results" / "signatures.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "when": dt.datetime.now(dt.UTC).isoformat(),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
