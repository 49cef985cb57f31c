"""Persistence: one ``Store`` over SQLite (default, no server) or PostgreSQL.

SQLAlchemy Core gives one code path for both; the few places where the
databases differ (claiming queued deliveries, pragmas) are in this package
and say so. Schema changes are versioned migrations (``migrations.py``) that
run on start and with ``lgsp-gateway db migrate``.
"""

from gateway.store.database import Store, open_store

__all__ = ["Store", "open_store"]
