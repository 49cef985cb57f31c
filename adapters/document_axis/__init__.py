"""The national document-exchange axis (VDXP): outbound documents, inbound polling, a mock axis."""
