"""RFC 3161 signature timestamps: the only signing time we trust.

A signer's own ``signingTime`` (or a PDF's ``/M``) is a claim. A timestamp token is a
third party's signature over the hash of the signature value, so its ``genTime`` is when
the signature existed at the latest. It is used only when the token is intact, its imprint
matches, and the TSA's certificate builds a path to a configured anchor at that time with
extended key usage timeStamping; otherwise ``timestamp_invalid`` (a warning) and the
verification time is used instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.signatures.cms import signer_integrity
from gateway.signatures.integrity import Integrity, TimestampEvidence, digest
from gateway.signatures.policy import SignaturePolicy
from gateway.signatures.result import Reason, reason
from gateway.signatures.revocation import CLOCK_SKEW, RevocationChecker
from gateway.signatures.trust import TrustStore, subject_of


@dataclass
class TrustedTime:
    time: dt.datetime | None = None
    authority: str | None = None
    reasons: list[Reason] = field(default_factory=list)


def token_integrity(evidence: TimestampEvidence) -> tuple[dt.datetime | None, Integrity | str]:
    """(genTime, the token's signer integrity) or (None, why the token is unusable)."""
    token = evidence.token
    try:
        content_info = token["encap_content_info"]
        if content_info["content_type"].native != "tst_info":
            return None, "the token does not carry a TSTInfo"
        tst_info = content_info["content"].parsed
        imprint = tst_info["message_imprint"]
        algorithm = str(imprint["hash_algorithm"]["algorithm"].native)
        if digest(algorithm, evidence.imprint_data) != imprint["hashed_message"].native:
            return None, "the token's message imprint is not the hash of this signature"
        gen_time: dt.datetime = tst_info["gen_time"].native
        infos = list(token["signer_infos"])
        if len(infos) != 1:
            return None, "the token has not exactly one signer"
        raw = bytes(content_info["content"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return None, f"the token is malformed: {exc}"
    integrity = signer_integrity(
        token,
        infos[0],
        lambda name: digest(name, raw),
        kind="cms",
        target="timestamp",
        expected_content_type="tst_info",
    )
    return gen_time, integrity


async def trusted_time(
    evidences: Sequence[TimestampEvidence],
    *,
    trust: TrustStore,
    revocation: RevocationChecker,
    policy: SignaturePolicy,
    now: dt.datetime,
) -> TrustedTime:
    """The first token that holds, judged like a signature but for timestamping."""
    problems: list[str] = []
    for evidence in evidences:
        gen_time, checked = token_integrity(evidence)
        if isinstance(checked, str) or gen_time is None:
            problems.append(str(checked))
            continue
        if not checked.intact or checked.signer is None:
            problems.append("; ".join(r.detail or r.code for r in checked.reasons) or "not intact")
            continue
        if gen_time > now + CLOCK_SKEW:
            problems.append(f"the token is dated in the future ({gen_time.isoformat()})")
            continue
        tsa = subject_of(checked.signer)
        path = trust.build_path(
            checked.signer,
            checked.extra_certs,
            at=gen_time,
            usage="timestamping",
            algorithms=policy.algorithms,
        )
        if not path.ok:
            errors = [r.detail or r.code for r in path.reasons if r.severity == "error"]
            problems.append(f"TSA {tsa}: " + "; ".join(errors))
            continue
        _, revocation_reasons = await revocation.check_path(
            path.path, at=gen_time, mode=policy.revocation
        )
        if any(r.severity == "error" for r in revocation_reasons):
            problems.append(f"TSA {tsa}: " + "; ".join(r.detail for r in revocation_reasons))
            continue
        found = TrustedTime(time=gen_time, authority=tsa)
        found.reasons.extend(revocation_reasons)  # e.g. a soft-fail warning about the TSA
        found.reasons.extend(r for r in path.reasons if r.severity == "warning")
        return found
    result = TrustedTime()
    if problems:
        result.reasons.append(reason("timestamp_invalid", "warning", " | ".join(problems)))
    return result
