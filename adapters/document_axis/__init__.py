"""The national document-exchange axis (VDXP): outbound documents, inbound polling, a mock axis."""

from adapters.document_axis.adapter import DocumentAxisAdapter

__all__ = ["DocumentAxisAdapter"]
