"""Console sessions: an opaque cookie naming a server-side session, CSRF tokens, idle expiry.

A session is opened by presenting an admin key once; the browser then holds
only a random id in an HttpOnly, SameSite=Strict cookie (Secure over TLS).
The session remembers the *hash* of the key it was opened with and is
refused as soon as the running configuration no longer lists that hash, so
removing an admin key and reloading closes its sessions too. Sessions live
in the process's memory: a restart signs everyone out, and behind a load
balancer the console needs sticky sessions (or one replica).

Every form carries a CSRF token: the session's own once signed in; before
that (the sign-in form) a token also set as a cookie, compared on submit.
"""

from __future__ import annotations

import hmac
import secrets
import time

import msgspec

COOKIE = "lgsp_console"
LOGIN_COOKIE = "lgsp_console_login"
IDLE_SECONDS = 15 * 60
"""A session unused this long is closed."""
MAX_AGE_SECONDS = 8 * 3600
"""A session is closed this long after sign-in, however busy."""
MAX_SESSIONS = 1000
"""Oldest sessions go first beyond this many (a flood of sign-ins cannot fill memory)."""


class Session(msgspec.Struct, kw_only=True):
    id: str
    csrf: str
    key_hash: str
    """``sha256:<hex>`` of the admin key that opened it."""
    created: float
    seen: float


class Sessions:
    def __init__(self) -> None:
        self._open: dict[str, Session] = {}

    def open(self, key_hash: str) -> Session:
        now = time.time()
        self._expire(now)
        while len(self._open) >= MAX_SESSIONS:
            del self._open[min(self._open.values(), key=lambda s: s.seen).id]
        session = Session(
            id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            key_hash=key_hash,
            created=now,
            seen=now,
        )
        self._open[session.id] = session
        return session

    def get(self, session_id: str | None, admin_key_hashes: list[str]) -> Session | None:
        """The live session named by the cookie, touched; None if unknown, idle or revoked."""
        if not session_id:
            return None
        now = time.time()
        self._expire(now)
        session = self._open.get(session_id)
        if session is None:
            return None
        if session.key_hash not in admin_key_hashes:
            self.close(session_id)
            return None
        session.seen = now
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._open.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for session in list(self._open.values()):
            if now - session.seen > IDLE_SECONDS or now - session.created > MAX_AGE_SECONDS:
                del self._open[session.id]


def same_token(expected: str | None, presented: str | None) -> bool:
    return bool(expected and presented) and hmac.compare_digest(
        str(expected).encode(), str(presented).encode()
    )
