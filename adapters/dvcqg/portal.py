"""The portal's wire protocol: session login, the call envelope, error codes.

One ``Portal`` per configured upstream holds one session, shared by every
request: the first call logs in (one login at a time, behind a lock), a
call refused for an expired session logs in again once and is retried.

As OpenCPS's client does, every call is ``{session, madonvi, service, ...}``
with the service's own keys at the top level (``data``, ``isUpdating``,
``mahoso``, ``maTTHC``), and the ``dstcode`` header goes with every request,
the login included.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import msgspec

from adapters.dvcqg.settings import DvcqgSettings
from adapters.errors import UpstreamAuthFailed, UpstreamError, UpstreamRejected, UpstreamTimeout
from adapters.httpclient import PassiveHealth
from adapters.logs import get_logger

log = get_logger(__name__)


class NotFoundAtPortal(UpstreamRejected):
    """The portal has no such record (a lookup turns it into 404)."""


class Reply(msgspec.Struct, frozen=True):
    """A decoded answer of the portal: its ``error_code`` (as text) and the whole document."""

    code: str
    message: str
    document: dict[str, Any]


class Portal:
    def __init__(
        self, name: str, settings: DvcqgSettings, client: httpx.AsyncClient, health: PassiveHealth
    ) -> None:
        self.name = name
        self.settings = settings
        self.codes = settings.error_codes
        self.base_url = settings.base_url.rstrip("/")
        self.client = client
        self.health = health
        self._session: str | None = None
        self._login_lock = asyncio.Lock()

    async def call(
        self, service: str, fields: dict[str, Any], *, deadline: float, share: bool
    ) -> Reply:
        """One service call: the envelope plus ``fields``; the reply is a success or this raises."""
        path = self.settings.share_path if share else self.settings.integration_path
        session = await self._current_session(deadline)
        envelope = {"madonvi": self.settings.madonvi, "service": service, **fields}
        reply = await self.post(path, {"session": session, **envelope}, deadline)
        if reply.code in self.codes.session_expired:
            log.info("dvcqg_session_expired", upstream=self.name, service=service)
            session = await self._renew(session, deadline)
            reply = await self.post(path, {"session": session, **envelope}, deadline)
            if reply.code in self.codes.session_expired:
                raise UpstreamAuthFailed(f"{self.name} refused a session it has just opened")
        self.raise_for(reply, service)
        return reply

    def raise_for(self, reply: Reply, what: str) -> None:
        """Map a non-success ``error_code`` to the gateway's errors."""
        code, codes = reply.code, self.codes
        if code in codes.success:
            return
        said = f"{what}: {self.name} answered error_code {code}: {reply.message or '(no message)'}"
        if code in codes.not_found:
            raise NotFoundAtPortal(said)
        if code in codes.data_invalid:
            raise UpstreamRejected(said)
        if code in codes.auth_failed or code in codes.session_expired:
            raise UpstreamAuthFailed(said)
        raise UpstreamError(said)

    async def post(self, path: str, payload: Any, deadline: float) -> Reply:
        """POST JSON (with ``dstcode``), decode the answer; transport failures as gateway errors."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise UpstreamTimeout("no time left before the route's deadline")
        try:
            answer = await self.client.post(
                self.base_url + path,
                content=msgspec.json.encode(payload),
                headers={"content-type": "application/json", "dstcode": self.settings.dstcode},
                timeout=httpx.Timeout(remaining),
            )
        except httpx.HTTPError as exc:
            raise self.health.unreachable(exc, self.name) from None
        self.health.ok()
        try:
            document = msgspec.json.decode(answer.content)
        except msgspec.DecodeError:
            document = None
        if not isinstance(document, dict) or "error_code" not in document:
            status = answer.status_code
            raise UpstreamError(
                f"{self.name} answered HTTP {status} without an error_code",
                upstream_status=status if status >= 400 else None,
            )
        message = document.get("message")
        return Reply(
            str(document["error_code"]), message if isinstance(message, str) else "", document
        )

    async def _current_session(self, deadline: float) -> str:
        if self._session is not None:
            return self._session
        async with self._login_lock:
            if self._session is None:
                self._session = await self._login(deadline)
            return self._session

    async def _renew(self, stale: str, deadline: float) -> str:
        """A fresh session, unless another request already replaced ``stale``."""
        async with self._login_lock:
            if self._session in (None, stale):
                self._session = None
                self._session = await self._login(deadline)
            assert self._session is not None
            return self._session

    async def _login(self, deadline: float) -> str:
        settings = self.settings
        credentials = {"username": settings.username, "password": settings.password}
        reply = await self.post(settings.auth_path, credentials, deadline)
        session = reply.document.get("session")
        if reply.code not in self.codes.success or not isinstance(session, str) or not session:
            raise UpstreamAuthFailed(
                f"{self.name} refused the gateway's login (error_code {reply.code}: "
                f"{reply.message or 'no message'})"
            )
        log.info("dvcqg_logged_in", upstream=self.name)
        return session
