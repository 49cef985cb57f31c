"""Helpers shared by the tests, one module per concern.

- ``config``: repository paths, the demo and test API keys, ``write_config``
- ``servers``: ``free_port``, ``serve_in_thread`` (uvicorn in a thread), ASGI ``lifespan``
- ``processes``: ``gateway_process`` (``lgsp-gateway serve`` as a real OS process)
- ``databases``: a fresh PostgreSQL database per session
- ``upstreams``: loopback upstreams (``echo_upstream``, ``RecordingUpstream``)
- ``tls_pki``: a throwaway CA for TLS tests
- ``signing_pki``, ``signed_documents``: a signing PKI with OCSP/CRL servers; signed edXML, PDF, CMS
- ``document_axis``: the gateway, the mock document axis and agency systems, wired together

Data fixtures (sample documents) live under ``tests/fixtures/``.
"""
