"""Limits on an edXML message: the rule lengths, and what a parse may cost.

The length defaults are one integrator's validator (edxml.md), adopted so that
what we accept, the national axis accepts too; a deployment can change them.
"""

from __future__ import annotations

import msgspec

from schemas.xmlsafe import XmlLimits

MiB = 1024 * 1024


class EdxmlLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every bound used by parse, validate and build; all have defaults."""

    max_subject_chars: int = 500
    max_content_chars: int = 500
    max_attachment_name_chars: int = 200
    max_place_chars: int = 150
    """PromulgationInfo/Place and ToPlaces/Place."""
    max_appendix_chars: int = 250
    max_depth: int = 64
    """Element nesting; refusing deeper documents stops stack and CPU bombs."""
    max_document_bytes: int = 256 * MiB
    max_text_chars: int = 1 * MiB
    """One text other than attachment content (a header never needs more)."""
    max_header_chars: int = 8 * MiB
    """All text other than attachment content: what is held while parsing."""
    max_elements: int = 100_000
    """Elements, attachments' included (a message to 1,000 receivers has some 10,000)."""
    max_attachment_bytes: int = 128 * MiB
    """One attachment, decoded."""
    max_attachments: int = 1000
    spool_memory_bytes: int = 1 * MiB
    """An attachment up to this size stays in memory; a larger one goes to a temp file."""

    def xml(self) -> XmlLimits:
        """The part that ``schemas.xmlsafe`` enforces."""
        return XmlLimits(
            max_depth=self.max_depth,
            max_bytes=self.max_document_bytes,
            max_text_chars=self.max_text_chars,
            max_elements=self.max_elements,
            max_total_text_chars=self.max_header_chars,
        )


DEFAULT_LIMITS = EdxmlLimits()
