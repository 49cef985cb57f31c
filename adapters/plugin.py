"""What an adapter package brings besides its adapters, declared in one object.

A national system is one package: its adapter (entry point group
``lgsp_gateway.adapters``) and a ``Plugin`` (group ``lgsp_gateway.plugins``)
naming what the gateway must know about it without importing the adapter:
the mock of the national system, its own error codes, the field names that
hold personal data, and body-schema kinds that routes may name. The gateway
core names no national system; it asks ``adapters.registry`` instead::

    [project.entry-points."lgsp_gateway.plugins"]
    sftp = "lgsp_sftp.plugin:PLUGIN"

Keep the module that defines the ``Plugin`` light: heavy parts (the mock's
app, a schema kind's parser) are named as ``"module:attribute"`` strings and
imported only when used.
"""

from __future__ import annotations

import msgspec

from adapters.errors import GatewayError


class MockSystem(msgspec.Struct, frozen=True, kw_only=True):
    """A mock of the national system, for integrators who cannot reach the real one.

    ``app`` is ``"module:create_app"``: a callable taking the mock's options
    as keyword arguments and returning an ASGI app (``adapters.mockkit``
    gives it counters, faults and a control API).
    """

    app: str
    default_port: int


class Plugin(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    """Also the mock's name: ``mocks: {NAME: ...}`` and ``lgsp-gateway mock NAME``."""
    description: str = ""
    mock: MockSystem | None = None
    errors: tuple[type[GatewayError], ...] = ()
    """Error classes of this package whose codes callers may see."""
    personal_fields: tuple[str, ...] = ()
    """JSON field names holding personal data: masked in stored message bodies."""
    body_schemas: dict[str, str] = {}
    """Schema kind -> ``"module:Class"`` of a ``BodySchema`` built with no arguments; a route
    names the kind as its ``request.schema`` (the document axis brings ``edxml``)."""
    usage: dict[str, str] = {}
    """Operation -> what a successful exchange of it counts as in the usage report per agency
    and month: ``documents_sent`` or ``dossiers_synced`` (the admin console's report)."""
