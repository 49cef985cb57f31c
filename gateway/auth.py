"""API keys: generated random, stored only as SHA-256, looked up by digest.

Keys are 256-bit random tokens, so a fast hash is the right one (a slow KDF
protects guessable passwords, not random keys). The presented key is hashed
before anything is compared, so every comparison is between digests: its
timing depends on the digest of the attacker's own guess, never on the
bytes of a stored key, which is what a constant-time compare protects.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from collections.abc import Iterable
from typing import Generic, TypeVar

from gateway.config.model import ApiKey, KeySpec, key_hash

T = TypeVar("T")
PREFIX = "sha256:"
VIETNAM = dt.timezone(dt.timedelta(hours=7))
EXPIRY_WARNING_DAYS = 30


def hash_key(key: str) -> str:
    return PREFIX + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "lgsp_" + secrets.token_urlsafe(32)


def expires_at(spec: KeySpec) -> float | None:
    """Unix time after which the key is refused: the end of its ``not_after`` day, UTC+7."""
    if not isinstance(spec, ApiKey) or spec.not_after is None:
        return None
    end = dt.datetime.combine(spec.not_after + dt.timedelta(days=1), dt.time(), VIETNAM)
    return end.timestamp()


def expiring_keys(specs: Iterable[KeySpec], now: float | None = None) -> list[tuple[str, str]]:
    """(hash, end date) of keys whose end is within ``EXPIRY_WARNING_DAYS`` (or past)."""
    horizon = (now or time.time()) + EXPIRY_WARNING_DAYS * 86400
    return [
        (key_hash(spec), str(spec.not_after))
        for spec in specs
        if isinstance(spec, ApiKey) and (end := expires_at(spec)) is not None and end <= horizon
    ]


class KeyRing(Generic[T]):
    """Owners by key digest; a key past its ``not_after`` is as unknown as a wrong one."""

    def __init__(self, entries: Iterable[tuple[KeySpec, T]]) -> None:
        self._by_digest = {
            bytes.fromhex(key_hash(spec).removeprefix(PREFIX)): (owner, expires_at(spec))
            for spec, owner in entries
        }

    def __bool__(self) -> bool:
        return bool(self._by_digest)

    def lookup(self, presented: str | None) -> T | None:
        if not presented:
            return None
        entry = self._by_digest.get(hashlib.sha256(presented.encode()).digest())
        if entry is None:
            return None
        owner, end = entry
        return owner if end is None or time.time() < end else None
