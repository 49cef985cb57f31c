"""A document message, parsed or about to be built: header, trace, manifest, attachments."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from schemas.edxml.attachments import Attachment
from schemas.edxml.errors import EdxmlIssue
from schemas.edxml.models import Bussiness, MessageHeader, Reference, TraceHeader, TraceHeaderList


class EdxmlDocument:
    """One edXML document message.

    Made by ``parse`` (attachments spooled: ``close()`` it, or use ``with``) or
    by hand / ``from_json`` to be built. Without an explicit ``manifest`` the
    manifest lists the attachments; attachments without a ContentId get
    ``cid:1``, ``cid:2``... in order.
    """

    def __init__(
        self,
        header: MessageHeader,
        *,
        trace: Sequence[TraceHeader] = (),
        bussiness: Bussiness | None = None,
        manifest: Sequence[Reference] | None = None,
        manifest_version: str | None = "1.0",
        attachments: Sequence[Attachment] = (),
        signature_xml: bytes | None = None,
        issues: Sequence[EdxmlIssue] = (),
    ) -> None:
        self.header = header
        self.trace = list(trace)
        self.bussiness = bussiness
        self.attachments = list(attachments)
        for index, attachment in enumerate(self.attachments, 1):
            if not attachment.content_id:
                attachment.content_id = f"cid:{index}"
        self.manifest = (
            list(manifest) if manifest is not None else [a.reference() for a in self.attachments]
        )
        self.manifest_version = manifest_version
        self.signature_xml = signature_xml
        """The Signature element (xmldsig or, a known quirk, edXML namespace), re-serialized.

        Verify signatures over the original bytes, not over this or the models.
        """
        self.issues = list(issues)
        """Empty unless parsed with ``strict=False``."""

    @property
    def signature_present(self) -> bool:
        return self.signature_xml is not None

    @property
    def trace_header_list(self) -> TraceHeaderList | None:
        """The TraceHeaderList element's content; None when there is nothing to write."""
        if not self.trace and self.bussiness is None:
            return None
        return TraceHeaderList(TraceHeader=self.trace, Bussiness=self.bussiness)

    def attachment(self, content_id: str) -> Attachment | None:
        """The attachment with this ContentId (``cid:`` prefix optional on either side)."""
        wanted = content_key(content_id)
        return next((a for a in self.attachments if content_key(a.content_id) == wanted), None)

    def close(self) -> None:
        """Release the attachments' spooled files."""
        for attachment in self.attachments:
            attachment.close()

    def __enter__(self) -> EdxmlDocument:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"EdxmlDocument(DocumentId={self.header.DocumentId!r}, "
            f"From={self.header.From.OrganId!r}, To={[t.OrganId for t in self.header.To]!r}, "
            f"attachments={len(self.attachments)}, signature_present={self.signature_present})"
        )


def content_key(content_id: str) -> str:
    """A ContentId as compared: manifests write ``cid:x``, some attachments only ``x``."""
    content_id = content_id.strip()
    return content_id[4:] if content_id[:4].lower() == "cid:" else content_id
