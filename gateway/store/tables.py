"""The tables, as SQLAlchemy Core objects. Times are Unix seconds (float)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.Float, nullable=False),
)

# One record per exchange; ``hash`` chains each record to the previous one of
# the same ``log_id`` (one chain per gateway process, so replicas never contend).
message_log = sa.Table(
    "message_log",
    metadata,
    sa.Column("log_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("message_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # exchange | delivery | accepted
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("client", sa.String(64)),
    sa.Column("route", sa.String(64)),
    sa.Column("upstream", sa.String(64)),
    sa.Column("operation", sa.String(200)),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(2000), nullable=False),
    sa.Column("t_request_in", sa.Float, nullable=False),
    sa.Column("t_upstream_out", sa.Float),
    sa.Column("t_upstream_in", sa.Float),
    sa.Column("t_response_out", sa.Float, nullable=False),
    sa.Column("bytes_in", sa.BigInteger, nullable=False),
    sa.Column("bytes_out", sa.BigInteger, nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("error_code", sa.String(64)),
    sa.Column("request_sha256", sa.String(64), nullable=False),
    sa.Column("response_sha256", sa.String(64), nullable=False),
    sa.Column("signature", sa.Text),  # JSON verification result, when there is one
    sa.Column("request_body", sa.LargeBinary),
    sa.Column("response_body", sa.LargeBinary),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
)
sa.Index("message_log_time", message_log.c.t_request_in)
sa.Index("message_log_message", message_log.c.message_id)

# Where a purged chain now starts: the hash of the last purged record.
log_anchor = sa.Table(
    "log_anchor",
    metadata,
    sa.Column("log_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("purged_at", sa.Float, nullable=False),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # the message id
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("upstream", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # queued delivering delivered failed dead
    sa.Column("request", sa.LargeBinary, nullable=False),  # the GatewayRequest, msgpack
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("retry_base", sa.Integer, nullable=False, default=0),
    # attempts made before the last manual retry: the attempt budget counts from here
    sa.Column("created_at", sa.Float, nullable=False),  # accepted
    sa.Column(
        "queued_at", sa.Float, nullable=False
    ),  # accepted, or last manual retry: age counts from here
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("next_attempt_at", sa.Float, nullable=False),
    sa.Column("lease_until", sa.Float),
    sa.Column("leased_by", sa.String(64)),
    sa.Column("last_error", sa.Text),
    sa.Column("response_status", sa.Integer),
    sa.Column("response_body", sa.LargeBinary),
    sa.Column("response_type", sa.String(200)),
    sa.Column("discard_reason", sa.Text),
)
sa.Index("deliveries_due", deliveries.c.state, deliveries.c.next_attempt_at)
# Only the unfinished rows, by upstream: a claim walks its upstream's in order and stops at
# its limit, however long the history of delivered messages or the backlog (migration 6).
WAITING = ("queued", "failed")
"""States of a delivery waiting for its next attempt."""
WAITING_SQL = ", ".join(f"'{state}'" for state in WAITING)
WAITING_STATES = sa.text(f"state IN ({WAITING_SQL})")
LEASED_STATE = sa.text("state = 'delivering'")


def _unfinished(name: str, column: sa.Column[Any], states: sa.TextClause) -> sa.Index:
    return sa.Index(
        name, deliveries.c.upstream, column, postgresql_where=states, sqlite_where=states
    )


deliveries_waiting = _unfinished("deliveries_waiting", deliveries.c.next_attempt_at, WAITING_STATES)
deliveries_leased = _unfinished("deliveries_leased", deliveries.c.lease_until, LEASED_STATE)

delivery_attempts = sa.Table(
    "delivery_attempts",
    metadata,
    sa.Column("delivery_id", sa.String(64), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=False),
    sa.Column("worker", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(32), nullable=False),  # delivered | failed code
    sa.Column("status", sa.Integer),
    sa.Column("detail", sa.Text),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("client", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("route", sa.String(64), nullable=False),
    sa.Column("request_sha256", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | done
    sa.Column("status", sa.Integer),
    sa.Column("headers", sa.Text),  # JSON
    sa.Column("body", sa.LargeBinary),
    sa.Column("media_type", sa.String(200)),
    sa.Column("created_at", sa.Float, nullable=False),
)
sa.Index("idempotency_age", idempotency_keys.c.created_at)

# What adapters remember between requests and across replicas (``AdapterState``),
# e.g. the last status synced per dossier. Namespaced by upstream name.
adapter_state = sa.Table(
    "adapter_state",
    metadata,
    sa.Column("upstream", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# Access agreements: a client's request for a service of the catalogue and the owner's
# decision (approved, refused with its reason and legal basis, revoked). Approved rows
# extend the routes' ``clients`` lists from YAML, on every replica.
access_requests = sa.Table(
    "access_requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending approved refused revoked
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("legal_basis", sa.Text, nullable=False),
    sa.Column("expected_volume", sa.String(200), nullable=False),
    sa.Column("contact", sa.Text, nullable=False),  # JSON {name, email, phone}
    sa.Column("requested_at", sa.Float, nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("decided_at", sa.Float),
    sa.Column("decided_by", sa.String(200)),
    sa.Column("reason", sa.Text),  # why approved or refused
    sa.Column("decision_legal_basis", sa.Text),  # the refusal's legal basis
    sa.Column("expires_at", sa.Float),  # an approval's end; none: until revoked
    sa.Column("rate_limit", sa.String(32)),  # e.g. 1000/day
    sa.Column("revoked_at", sa.Float),
    sa.Column("revoked_by", sa.String(200)),
    sa.Column("revoke_reason", sa.Text),
)
sa.Index("access_requests_pair", access_requests.c.client, access_requests.c.service)
sa.Index("access_requests_state", access_requests.c.state)

# Agencies' mailboxes kept here (``AdapterMailboxes``): what an adapter holds for an
# agency that pulls (the document axis's local legs to agencies without a system).
# ``id`` is the message id on record in the message log; ``box``/``item`` are the
# adapter's names (an OrganId, a docId). Namespaced by upstream name.
agency_mailbox = sa.Table(
    "agency_mailbox",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("upstream", sa.String(64), nullable=False),
    sa.Column("box", sa.String(64), nullable=False),
    sa.Column("item", sa.String(64), nullable=False),
    sa.Column("headers", sa.Text, nullable=False),  # JSON: the message's headers
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column(
        "state", sa.String(16), nullable=False
    ),  # initial processing done fail (the axis's words)
    sa.Column("reason", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
sa.Index(
    "agency_mailbox_item",
    agency_mailbox.c.upstream,
    agency_mailbox.c.box,
    agency_mailbox.c.item,
    unique=True,
)
sa.Index("agency_mailbox_age", agency_mailbox.c.upstream, agency_mailbox.c.updated_at)

# Work that runs in one process of the deployment at a time (a hosted adapter's poller):
# ``holder`` (a process id) owns ``name`` until ``expires_at``, renewing it while alive.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("taken_at", sa.Float, nullable=False),
)
