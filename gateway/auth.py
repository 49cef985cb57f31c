"""API keys: generated random, stored only as SHA-256, looked up by digest.

Keys are 256-bit random tokens, so a fast hash is the right one (a slow KDF
protects guessable passwords, not random keys). The presented key is hashed
before anything is compared, so every comparison is between digests: its
timing depends on the digest of the attacker's own guess, never on the
bytes of a stored key, which is what a constant-time compare protects.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")
PREFIX = "sha256:"


def hash_key(key: str) -> str:
    return PREFIX + hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "lgsp_" + secrets.token_urlsafe(32)


class KeyRing(Generic[T]):
    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        self._by_digest = {bytes.fromhex(h.removeprefix(PREFIX)): owner for h, owner in entries}

    def __bool__(self) -> bool:
        return bool(self._by_digest)

    def lookup(self, presented: str | None) -> T | None:
        if not presented:
            return None
        return self._by_digest.get(hashlib.sha256(presented.encode()).digest())
