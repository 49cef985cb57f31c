"""The axis's HTTP protocol, in one place: calls, headers, answers and their errors.

Every call carries the province's credentials and the agency it acts for;
``sendEdoc`` streams its body with ``hash-file``, ``getEdoc`` streams the
document into a file and checks the axis's ``hash-file`` on the way. An
answer becomes its ``data`` items or one of the gateway's typed errors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any, BinaryIO

import httpx
import msgspec

from adapters.document_axis.settings import DocumentAxisSettings
from adapters.errors import UpstreamAuthFailed, UpstreamError, UpstreamRejected
from adapters.httpclient import PassiveHealth, build_client, upstream_error

CHUNK = 1 << 20
"""Bytes per write when streaming a body: large enough to be cheap, small enough to be bounded."""
MAX_DESCRIPTION = 200


class NotFound(UpstreamRejected):
    """The axis has no such document (for this agency)."""


class AxisAnswer(msgspec.Struct):
    status: str
    ErrorCode: str | int = ""
    ErrorDesc: str | None = None
    data: Any = None


class Payload:
    """A message body to send: the bytes as received, or a file it was built into; hashed once."""

    def __init__(self, source: bytes | BinaryIO, size: int, sha256: str) -> None:
        self.source = source
        self.size = size
        self.sha256 = sha256

    @classmethod
    def of_bytes(cls, body: bytes) -> Payload:
        return cls(body, len(body), hashlib.sha256(body).hexdigest())

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in ``CHUNK`` pieces: views of the bytes (no copy), or reads of the file."""
        if isinstance(self.source, bytes):
            view = memoryview(self.source)
            for start in range(0, self.size, CHUNK):
                yield view[start : start + CHUNK]  # type: ignore[misc]  # bytes-like is enough
            return
        self.source.seek(0)
        while chunk := self.source.read(CHUNK):
            yield chunk


class HashingWriter:
    """A binary sink that hashes and counts what goes through it into ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.out.write(data)


class AxisClient:
    def __init__(self, name: str, settings: DocumentAxisSettings, config_dir: str) -> None:
        self.name = name
        self.settings = settings
        self.base_url = settings.base_url.rstrip("/")
        self.client = build_client(settings.tls, settings.pool, config_dir)
        self.health = PassiveHealth()

    def _headers(self, organ_id: str) -> dict[str, str]:
        names, credentials = self.settings.headers, self.settings.credentials
        return {
            names.system_id: credentials.system_id,
            names.secret: credentials.secret,
            names.sender: organ_id,
            names.service_type: self.settings.service_type,
        }

    async def send(
        self,
        sender: str,
        receivers: list[str],
        message_type: str,
        payload: Payload,
        timeout: float,
    ) -> dict[str, Any]:
        """``sendEdoc``: the first ``data`` item of the answer (it holds the docId)."""
        names = self.settings.headers
        headers = {
            **self._headers(sender),
            names.receivers: json.dumps(receivers),
            names.message_type: message_type,
            names.hash: payload.sha256,
            "content-type": "application/octet-stream",
            "content-length": str(payload.size),
        }
        items = await self._call(self.settings.paths.send_edoc, headers, payload.chunks(), timeout)
        return items[0] if items else {}

    async def call(
        self, path: str, organ_id: str, body: dict[str, Any], timeout: float
    ) -> list[dict[str, Any]]:
        """A JSON operation (lists, ``updateStatus``): the answer's ``data`` items."""
        headers = {**self._headers(organ_id), "content-type": "application/json"}
        return await self._call(path, headers, msgspec.json.encode(body), timeout)

    async def _call(
        self, path: str, headers: dict[str, str], content: Any, timeout: float
    ) -> list[dict[str, Any]]:
        try:
            answer = await self.client.post(
                self.base_url + path,
                content=content,
                headers=headers,
                timeout=httpx.Timeout(timeout),
            )
        except httpx.HTTPError as exc:
            raise self._failed(upstream_error(exc, self.name)) from None
        return self._read(answer.status_code, answer.content)

    async def fetch(self, organ_id: str, doc_id: str, out: BinaryIO, timeout: float) -> int:
        """``getEdoc``: stream the document into ``out`` and check it; its size.

        ``hash-file`` on the answer, when the axis sends it, must match what arrived.
        """
        headers = {**self._headers(organ_id), "content-type": "application/json"}
        body = msgspec.json.encode({"docId": doc_id})
        url = self.base_url + self.settings.paths.get_edoc
        sink = HashingWriter(out)
        try:
            async with self.client.stream(
                "POST", url, content=body, headers=headers, timeout=httpx.Timeout(timeout)
            ) as answer:
                media_type = answer.headers.get("content-type", "").split(";")[0].strip()
                if answer.status_code != 200 or media_type == "application/json":
                    self._read(answer.status_code, await answer.aread())
                    raise self._failed(UpstreamError(f"{self.name} getEdoc answered no document"))
                async for chunk in answer.aiter_raw(CHUNK):
                    sink.write(chunk)
                expected = answer.headers.get(self.settings.headers.hash)
        except httpx.HTTPError as exc:
            raise self._failed(upstream_error(exc, self.name)) from None
        if expected is not None and expected.lower() != sink.digest.hexdigest():
            raise self._failed(UpstreamError(f"{self.name} getEdoc: the document fails hash-file"))
        self.health.ok()
        return sink.size

    def _read(self, status: int, content: bytes) -> list[dict[str, Any]]:
        """The ``data`` items of an OK answer; raise the typed error of any other."""
        if status >= 500:
            raise self._failed(
                UpstreamError(f"{self.name} answered HTTP {status}", upstream_status=status)
            )
        if status in (401, 403):
            raise self._failed(UpstreamAuthFailed(f"{self.name} refused the credentials"))
        try:
            answer = msgspec.json.decode(content, type=AxisAnswer)
        except msgspec.DecodeError:
            raise self._failed(
                UpstreamError(f"{self.name} answered HTTP {status} without an axis JSON answer")
            ) from None
        self.health.ok()
        code = str(answer.ErrorCode)
        if answer.status.upper() == "OK" and code in ("0", ""):
            data = answer.data
            items = data if isinstance(data, list) else [] if data is None else [data]
            return [item for item in items if isinstance(item, dict)]
        detail = f"{self.name}: {code or status} {(answer.ErrorDesc or '')[:MAX_DESCRIPTION]}"
        codes = self.settings.error_codes
        if code in codes.rejected:
            raise UpstreamRejected(detail.rstrip())
        if code in codes.not_found:
            raise NotFound(detail.rstrip())
        if code in codes.auth:
            raise UpstreamAuthFailed(detail.rstrip())
        raise UpstreamError(detail.rstrip())

    def _failed(self, error: UpstreamError) -> UpstreamError:
        self.health.failed(error)
        return error

    async def aclose(self) -> None:
        await self.client.aclose()
