"""Attachments: files of tens of MB that must never be held several times in memory.

A parsed attachment's bytes are decoded from base64 as the text arrives, in
bounded pieces, into a ``SpooledTemporaryFile`` (memory while small, a temp
file beyond ``spool_memory_bytes``); size and SHA-256 are computed on the way.
``Attachment.open()`` gives a fresh, independent reader each call, so a
signature verifier and an adapter can both read the same attachment.
"""

from __future__ import annotations

import binascii
import hashlib
import io
import mimetypes
import os
import tempfile
import threading
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO

from schemas.edxml.errors import EdxmlUnsafe
from schemas.edxml.models import AttachmentInfo, Reference

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

_CHUNK = 64 * 1024
_WHITESPACE = str.maketrans("", "", " \t\r\n")
_DRAIN_CHARS = 256 * 1024


class Spool:
    """Bytes written once, then read by any number of independent readers."""

    def __init__(self, memory_bytes: int) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=memory_bytes)  # noqa: SIM115
        self._lock = threading.Lock()
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def read_at(self, offset: int, size: int) -> bytes:
        with self._lock:
            if self._file.closed:
                raise ValueError("the attachment was closed (its document was closed)")
            self._file.seek(offset)
            return self._file.read(size)

    def open(self) -> BinaryIO:
        return io.BufferedReader(_SpoolReader(self), buffer_size=_CHUNK)

    def close(self) -> None:
        with self._lock:
            self._file.close()


class _SpoolReader(io.RawIOBase):
    """A reader with its own position over a shared spool."""

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._spool.read_at(self._position, len(view))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._spool.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position


class Base64Decoder:
    """Decodes base64 text given in pieces; never holds more than a few hundred KB.

    Whitespace (line breaks of wrapped base64) is skipped; anything else that
    is not base64, or data after the final padding, sets ``error`` and stops
    decoding. Passing ``max_bytes`` decoded raises ``EdxmlUnsafe``.
    """

    def __init__(self, write: Callable[[bytes], None] | None, max_bytes: int) -> None:
        self._write = write
        self._max_bytes = max_bytes
        self._parts: list[str] = []
        self._pending = 0
        self._padded = False
        self.size = 0
        self.error: str | None = None

    def feed(self, text: str) -> None:
        if self.error is not None:
            return
        self._parts.append(text)
        self._pending += len(text)
        if self._pending >= _DRAIN_CHARS:
            self._drain(final=False)

    def finish(self) -> None:
        if self.error is None:
            self._drain(final=True)

    def _drain(self, *, final: bool) -> None:
        text = "".join(self._parts).translate(_WHITESPACE)
        cut = len(text) if final else len(text) - len(text) % 4
        body, rest = text[:cut], text[cut:]
        self._parts = [rest] if rest else []
        self._pending = len(rest)
        if not body:
            return
        if self._padded:
            self.error = "base64 data goes on after its final padding"
            return
        try:
            data = binascii.a2b_base64(body.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            self.error = f"not base64: {exc}"
            return
        self._padded = body.endswith("=")
        self.size += len(data)
        if self.size > self._max_bytes:
            raise EdxmlUnsafe(
                f"an attachment is larger than {self._max_bytes} bytes", "attachment_too_large"
            )
        if self._write is not None:
            self._write(data)


class Attachment:
    """One attached file: its metadata, the size and SHA-256 of its decoded bytes, and readers.

    Parsed attachments live in a spool released by ``close()`` (the document's
    ``close()`` does it). Outgoing ones come from ``from_bytes``, ``from_path``
    or ``from_stream``. An empty ``content_id`` is filled in by the document.
    """

    def __init__(
        self,
        *,
        content_id: str,
        name: str | None,
        content_type: str | None,
        description: str | None,
        size: int,
        sha256: str,
        opener: Callable[[], BinaryIO],
        release: Callable[[], None] | None = None,
    ) -> None:
        self.content_id = content_id
        self.name = name
        self.content_type = content_type
        self.description = description
        self.size = size
        self.sha256 = sha256
        self._opener = opener
        self._release = release
        self.closed = False

    def open(self) -> BinaryIO:
        """A new binary reader of the decoded bytes, positioned at the start."""
        if self.closed:
            raise ValueError(f"attachment {self.content_id} is closed")
        return self._opener()

    def read_bytes(self) -> bytes:
        """All the bytes at once: for small attachments and tests."""
        with self.open() as stream:
            return stream.read()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._release is not None:
                self._release()

    def __enter__(self) -> Attachment:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def info(self) -> AttachmentInfo:
        """The metadata as the Attachment element carries it."""
        return AttachmentInfo(
            ContentId=self.content_id,
            AttachmentName=self.name,
            Description=self.description,
            ContentType=self.content_type,
        )

    def reference(self) -> Reference:
        """The manifest entry for this attachment."""
        return Reference(
            ContentId=self.content_id,
            ContentType=self.content_type,
            Description=self.description,
            AttachmentName=self.name,
        )

    def __repr__(self) -> str:
        return (
            f"Attachment(content_id={self.content_id!r}, name={self.name!r}, "
            f"size={self.size}, sha256={self.sha256[:12]}...)"
        )

    @classmethod
    def from_spool(cls, info: AttachmentInfo, spool: Spool) -> Attachment:
        return cls(
            content_id=info.ContentId,
            name=info.AttachmentName,
            content_type=info.ContentType,
            description=info.Description,
            size=spool.size,
            sha256=spool.sha256,
            opener=spool.open,
            release=spool.close,
        )

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        name: str,
        content_type: str | None = None,
        description: str | None = None,
        content_id: str = "",
    ) -> Attachment:
        """An attachment held in memory (small files)."""
        return cls(
            content_id=content_id,
            name=name,
            content_type=content_type or guess_content_type(name),
            description=description,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            opener=lambda: io.BytesIO(data),
        )

    @classmethod
    def from_path(
        cls,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        content_type: str | None = None,
        description: str | None = None,
        content_id: str = "",
    ) -> Attachment:
        """A file on disk, read when the document is built (hashed once now)."""
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        name = name or os.path.basename(os.fspath(path))
        return cls(
            content_id=content_id,
            name=name,
            content_type=content_type or guess_content_type(name),
            description=description,
            size=size,
            sha256=digest.hexdigest(),
            opener=lambda: open(path, "rb"),
        )

    @classmethod
    def from_stream(
        cls,
        stream: BinaryIO,
        *,
        name: str,
        content_type: str | None = None,
        description: str | None = None,
        content_id: str = "",
        spool_memory_bytes: int = 1024 * 1024,
    ) -> Attachment:
        """A copy of a stream that can be read once only (an upload), spooled."""
        spool = Spool(spool_memory_bytes)
        while chunk := stream.read(_CHUNK):
            spool.write(chunk)
        info = AttachmentInfo(
            ContentId=content_id,
            AttachmentName=name,
            Description=description,
            ContentType=content_type or guess_content_type(name),
        )
        return cls.from_spool(info, spool)


def guess_content_type(name: str) -> str:
    """From the file name's extension; ``application/octet-stream`` when unknown."""
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
