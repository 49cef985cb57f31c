"""The axis's HTTP protocol, in one place: signed calls, their headers, answers and errors.

Every call is a POST whose parameters travel in a header map signed as
VNPT's SDK signs it (``signed_headers``): the account's ``systemid`` and a
``timestamp`` go in every map, the secret never goes on the wire.
``sendEdoc`` streams the edXML as the body; ``getEdoc``'s JSON answer is
decoded into a file as it arrives. An answer becomes its payload or one of
the gateway's typed errors.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any, BinaryIO

import httpx
import msgspec

from adapters.document_axis.answer import AnswerError, AnswerReader
from adapters.document_axis.settings import STATUS, AxisProtocol, DocumentAxisSettings
from adapters.errors import UpstreamAuthFailed, UpstreamError, UpstreamRejected
from adapters.httpclient import PassiveHealth, build_client
from schemas.edxml.formats import VIETNAM

CHUNK = 1 << 20
"""Bytes per write when streaming a body: large enough to be cheap, small enough to be bounded."""
MAX_DESCRIPTION = 200
MAX_FAIL_ANSWER = 1 << 20
"""Bytes read of an answer that is not a 200: enough for any axis error."""
JSON = "application/json"
NO_PARAMETERS = b"{}"
"""The body of ``getEdoc`` and ``updateStatus``, whose parameters are all headers: the SDK's
``HttpConnection.sendPostMultipart`` sends ``StringEntity("{}")`` (the lists: an empty form)."""
TRAILERS = {"crlf": b"\r\n", "none": b""}


class NotFound(UpstreamRejected):
    """The axis has no such document (for this account)."""


def now() -> datetime:
    """The time stamped on a call: Vietnam time, as the SDK's JVM on a Vietnamese server."""
    return datetime.now(VIETNAM)


def axis_timestamp(at: datetime) -> str:
    """``ddMMyyyy'T'HHmmss+SSSS`` (Java's SimpleDateFormat): a literal ``+``, 4-digit millis."""
    return f"{at:%d%m%Y}T{at:%H%M%S}+{at.microsecond // 1000:04d}"


def sha256_hex(digest: bytes, form: str) -> str:
    """``hash-file``: ``unpadded`` is the SDK's ``Integer.toHexString`` per byte (no leading 0)."""
    if form == "padded":
        return digest.hex()
    return "".join(f"{byte:x}" for byte in digest)


def hash_matches(claimed: str, digest: bytes) -> bool:
    """Whether a ``hash-file`` is this digest, written padded or the SDK's unpadded way."""
    claimed = claimed.strip().lower()
    return claimed in (sha256_hex(digest, "padded"), sha256_hex(digest, "unpadded"))


def hashmap_order(names: list[str]) -> list[str]:
    """The order Java's ``HashMap<String, String>`` iterates these keys (inserted in this order).

    The SDK keeps its header map in a HashMap and signs it in iteration
    order: bucket by bucket (``hash ^ hash >>> 16`` masked by the table size,
    16 until more than 12 entries), insertion order within a bucket.
    """
    capacity = 16
    while len(names) > capacity * 3 // 4:
        capacity *= 2

    def bucket(name: str) -> int:
        code = 0  # String.hashCode; header names are ASCII, one UTF-16 unit per character
        for char in name:
            code = (31 * code + ord(char)) & 0xFFFFFFFF
        return (code ^ (code >> 16)) & (capacity - 1)

    return sorted(names, key=bucket)  # stable: insertion order within a bucket


def signed_headers(
    entries: Iterable[tuple[str, str]], secret: str, protocol: AxisProtocol
) -> list[tuple[str, str]]:
    """The HTTP headers of a call whose header map is ``entries`` (in insertion order).

    As the SDK's ``VnptService.addXroadVnptHashHeader``: for each map entry,
    in HashMap order, ``<prefix><name>: value`` (and the bare header too for
    ``Content-Type``); ``<prefix>sign-header-key`` = the names joined by
    ``;``; ``<prefix>sign-header`` = the compact JSON object of the prefixed
    names and values; ``<prefix>hash-header`` = lowercase hex
    HMAC-SHA256(secret, sign-header) over UTF-8; then ``User-Agent`` and
    ``<prefix>version``.
    """
    values = dict(entries)
    prefix = protocol.header_prefix
    content_type = protocol.headers.content_type
    headers: list[tuple[str, str]] = []
    signed: dict[str, str] = {}
    for name in hashmap_order(list(values)):
        if name == content_type:
            headers.append((name, values[name]))
        headers.append((prefix + name, values[name]))
        signed[prefix + name] = values[name]
    sign_header = json.dumps(signed, ensure_ascii=False, separators=(",", ":"))
    digest = hmac.new(secret.encode(), sign_header.encode(), hashlib.sha256).hexdigest()
    return [
        *headers,
        (prefix + "sign-header-key", ";".join(hashmap_order(list(values)))),
        (prefix + "sign-header", sign_header),
        (prefix + "hash-header", digest),
        ("User-Agent", protocol.user_agent),
        (prefix + "version", protocol.version),
    ]


def header_safe(text: str) -> str:
    """``text`` fit for an HTTP header value: printable ASCII, short."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:MAX_DESCRIPTION]


def receivers(item: dict[str, Any]) -> list[str]:
    """The agencies a list item is for: ``to`` (SDK 2.0.1's sent list: ``toCode``).

    One agency id in the public examples; a list or a comma-separated string is read too.
    """
    value = item.get("to", item.get("toCode"))
    parts = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return list(dict.fromkeys(str(part).strip() for part in parts if str(part).strip()))


class Payload:
    """A message body to send: the bytes as received, or a file it was built into; hashed once."""

    def __init__(self, source: bytes | BinaryIO, size: int, digest: bytes) -> None:
        self.source = source
        self.size = size
        self.digest = digest

    @property
    def sha256(self) -> str:
        return self.digest.hex()

    @classmethod
    def of_bytes(cls, body: bytes) -> Payload:
        return cls(body, len(body), hashlib.sha256(body).digest())

    async def chunks(self, trailer: bytes = b"") -> AsyncIterator[bytes]:
        """The body in ``CHUNK`` pieces (views of the bytes, or file reads), then ``trailer``."""
        if isinstance(self.source, bytes):
            view = memoryview(self.source)
            for start in range(0, self.size, CHUNK):
                yield view[start : start + CHUNK]  # type: ignore[misc]  # bytes-like is enough
        else:
            self.source.seek(0)
            while chunk := self.source.read(CHUNK):
                yield chunk
        if trailer:
            yield trailer


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
        self.protocol = settings.protocol
        self.base_url = settings.base_url.rstrip("/")
        self.client = build_client(settings.tls, settings.pool, config_dir)
        self.health = PassiveHealth()

    def message_type(self, kind: str) -> str:
        """The axis's ``messagetype`` for a kind of message (``DOCUMENT`` or ``STATUS``)."""
        types = self.protocol.message_types
        return types.status if kind == STATUS else types.document

    def _headers(self, content_type: str, *entries: tuple[str, str]) -> list[tuple[str, str]]:
        """The signed headers of a call: the SDK's map is timestamp, systemid, Content-Type, ..."""
        names = self.protocol.headers
        base = [
            (names.timestamp, axis_timestamp(now())),
            (names.system_id, self.settings.credentials.system_id),
            (names.content_type, content_type),
        ]
        return signed_headers([*base, *entries], self.settings.credentials.secret, self.protocol)

    async def send(self, sender: str, kind: str, payload: Payload, timeout: float) -> str:
        """``sendEdoc``: the edXML as the body, its sender and hash in the map; the new DocId."""
        names, protocol = self.protocol.headers, self.protocol
        trailer = TRAILERS[protocol.body_trailer]
        headers = self._headers(
            "application/octet-stream",
            (names.sender, sender),
            (names.service_type, protocol.service_type),
            (names.message_type, self.message_type(kind)),
            (names.hash, sha256_hex(payload.digest, protocol.hash_file)),
        )
        headers.append(("Content-Length", str(payload.size + len(trailer))))
        answer = await self._call(
            self.settings.paths.send_edoc, headers, payload.chunks(trailer), timeout
        )
        doc_id = answer.get(protocol.send_answer_doc_id)
        if not isinstance(doc_id, str | int) or not str(doc_id):
            raise self._failed(UpstreamError(f"{self.name} sendEdoc answered no DocId"))
        return str(doc_id)

    async def list_edocs(self, path: str, kind: str, timeout: float) -> list[dict[str, Any]]:
        """``getReceivedEdocList`` / ``getSentEdocList`` of one kind: every item of the account."""
        names = self.protocol.headers
        headers = self._headers(
            JSON,
            (names.service_type, self.protocol.service_type),
            (names.message_type, self.message_type(kind)),
        )
        data = (await self._call(path, headers, b"", timeout)).get("data")
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

    async def update_status(self, doc_id: str, status: str, reason: str, timeout: float) -> None:
        """``updateStatus``: ``docid`` and ``status`` in the map (and why, when one is set)."""
        names = self.protocol.headers
        entries = [(names.update_doc_id, doc_id), (names.status, status)]
        if reason and names.status_desc:
            entries.append((names.status_desc, header_safe(reason)))
        await self._call(
            self.settings.paths.update_status, self._headers(JSON, *entries), NO_PARAMETERS, timeout
        )

    async def _call(
        self, path: str, headers: list[tuple[str, str]], content: Any, timeout: float
    ) -> dict[str, Any]:
        try:
            answer = await self.client.post(
                self.base_url + path,
                content=content,
                headers=headers,
                timeout=httpx.Timeout(timeout),
            )
        except httpx.HTTPError as exc:
            raise self.health.unreachable(exc, self.name) from None
        return self._read(answer.status_code, answer.content)

    async def fetch(self, doc_id: str, out: BinaryIO, timeout: float) -> int:
        """``getEdoc``: the base64 ``data`` of the answer decoded into ``out`` as it arrives."""
        headers = self._headers(JSON, (self.protocol.headers.get_doc_id, doc_id))
        url = self.base_url + self.settings.paths.get_edoc
        sink = HashingWriter(out)
        reader = AnswerReader(sink)
        try:
            async with self.client.stream(
                "POST", url, content=NO_PARAMETERS, headers=headers, timeout=httpx.Timeout(timeout)
            ) as answer:
                if answer.status_code != 200:
                    self._read(answer.status_code, await _bounded(answer))
                async for chunk in answer.aiter_bytes(CHUNK):
                    reader.feed(chunk)
                members = reader.finish()
        except httpx.HTTPError as exc:
            raise self.health.unreachable(exc, self.name) from None
        except AnswerError as exc:
            raise self._failed(UpstreamError(f"{self.name} getEdoc: {exc}")) from None
        self._check(members, 200)
        if not reader.decoded:
            raise self._failed(UpstreamError(f"{self.name} getEdoc answered no document"))
        return sink.size

    def _read(self, status: int, content: bytes) -> dict[str, Any]:
        """The members of a successful answer; raise the typed error of any other."""
        if status >= 500:
            raise self._failed(
                UpstreamError(f"{self.name} answered HTTP {status}", upstream_status=status)
            )
        try:
            answer = msgspec.json.decode(content)
        except msgspec.DecodeError:
            answer = None
        if not isinstance(answer, dict):
            if status in (401, 403):
                raise self._failed(UpstreamAuthFailed(f"{self.name} refused the credentials"))
            raise self._failed(
                UpstreamError(f"{self.name} answered HTTP {status} without an axis JSON answer")
            )
        return self._check(answer, status)

    def _check(self, answer: dict[str, Any], status: int) -> dict[str, Any]:
        """``answer`` if it says success: ``ErrorCode`` "0" (case-insensitive), not ``FAIL``."""
        self.health.ok()
        code = str(answer.get("ErrorCode", "")).strip()
        outcome = str(answer.get("status", "")).strip().upper()
        succeeded = code.casefold() == "0" if code else outcome == "OK"
        if succeeded and outcome != "FAIL" and status < 400:
            return answer
        description = str(answer.get("ErrorDesc") or "")[:MAX_DESCRIPTION]
        detail = f"{self.name}: {code or status} {description}".rstrip()
        codes = self.settings.error_codes
        if code in codes.not_found:
            raise NotFound(detail)
        if code in codes.auth or (not code and status in (401, 403)):
            raise UpstreamAuthFailed(detail)
        if code in codes.rejected:
            raise UpstreamRejected(detail)
        raise UpstreamError(detail)

    def _failed(self, error: UpstreamError) -> UpstreamError:
        self.health.failed(error)
        return error

    async def aclose(self) -> None:
        await self.client.aclose()


async def _bounded(answer: httpx.Response) -> bytes:
    """At most ``MAX_FAIL_ANSWER`` bytes of a streamed answer."""
    content = bytearray()
    async for chunk in answer.aiter_bytes():
        content += chunk
        if len(content) > MAX_FAIL_ANSWER:
            break
    return bytes(content)
