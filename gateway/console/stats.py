"""What the console's dashboard and usage report count, from the message log and the queue.

Counting reads the same tables the admin API reads (``message_log``,
``deliveries``) through the process's store, grouped in SQL so a month of
traffic is a handful of rows, never a scan in Python.

An exchange counts once: records of kind ``exchange`` (answered at once) and
``accepted`` (queued for delivery, and inbound messages accepted for an
agency); the ``delivery`` record of a queued message is its second half.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Iterable
from typing import Any

import msgspec
import sqlalchemy as sa

from adapters import registry
from gateway.delivery import INBOUND_ROUTE
from gateway.store import Store
from gateway.store.tables import deliveries, message_log

COUNTED_KINDS = ("exchange", "accepted")
DAY_SECONDS = 86400.0
VIETNAM = dt.timezone(dt.timedelta(hours=7), "ICT")
"""Months and times are Vietnam's (UTC+7, no daylight saving)."""
USAGE_COUNTERS = ("documents_sent", "documents_received", "dossiers_synced")


class Traffic(msgspec.Struct, kw_only=True):
    client: str
    route: str
    requests: int
    client_errors: int
    server_errors: int

    @property
    def error_rate(self) -> float:
        """Share of answers the caller could not use (4xx and 5xx)."""
        return (self.client_errors + self.server_errors) / self.requests if self.requests else 0.0


async def traffic(store: Store, since: float) -> list[Traffic]:
    """Exchanges per client and route since ``since``, with their 4xx and 5xx."""
    c = message_log.c
    query = (
        sa.select(
            c.client,
            c.route,
            sa.func.count(),
            sa.func.sum(sa.case((sa.and_(c.status >= 400, c.status < 500), 1), else_=0)),
            sa.func.sum(sa.case((c.status >= 500, 1), else_=0)),
        )
        .where(c.t_request_in >= since, c.kind.in_(COUNTED_KINDS))
        .group_by(c.client, c.route)
        .order_by(sa.func.count().desc())
    )
    async with store.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return [
        Traffic(
            client=client or "-",
            route=route or "-",
            requests=int(count),
            client_errors=int(c4 or 0),
            server_errors=int(c5 or 0),
        )
        for client, route, count, c4, c5 in rows
    ]


async def queue_depth(store: Store) -> dict[str, dict[str, int]]:
    """Upstream -> state -> messages in the delivery queue (finished ones purged later)."""
    c = deliveries.c
    query = sa.select(c.upstream, c.state, sa.func.count()).group_by(c.upstream, c.state)
    depth: dict[str, dict[str, int]] = {}
    async with store.engine.connect() as connection:
        for upstream, state, count in (await connection.execute(query)).all():
            depth.setdefault(upstream, {})[state] = int(count)
    return depth


# --- usage per agency and month --------------------------------------------------


class UsageRow(msgspec.Struct, kw_only=True):
    """One agency's use of one upstream in a month."""

    agency: str
    upstream: str
    exchanges: int = 0
    failed: int = 0
    documents_sent: int = 0
    documents_received: int = 0
    dossiers_synced: int = 0


def month_bounds(month: str | None) -> tuple[str, float, float]:
    """``YYYY-MM`` (default: this month in Vietnam) -> (month, start, end) as Unix times."""
    if month:
        try:
            start = dt.datetime.strptime(month, "%Y-%m").replace(tzinfo=VIETNAM)
        except ValueError:
            raise ValueError(f"month: expected YYYY-MM, not {month!r}") from None
    else:
        start = dt.datetime.now(VIETNAM).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (start + dt.timedelta(days=32)).replace(day=1)
    return start.strftime("%Y-%m"), start.timestamp(), following.timestamp()


async def usage(store: Store, start: float, end: float) -> list[UsageRow]:
    """Per agency and upstream: exchanges, failures, and what the plugins' counters count.

    The agency is the calling client; for an inbound message (a document the
    gateway received for an agency) it is the agency system it was accepted for.
    """
    c = message_log.c
    ok = c.status < 400
    query = (
        sa.select(c.client, c.upstream, c.route, c.operation, ok.label("ok"), sa.func.count())
        .where(c.t_request_in >= start, c.t_request_in < end, c.kind.in_(COUNTED_KINDS))
        .group_by(c.client, c.upstream, c.route, c.operation, ok)
    )
    async with store.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    counters = registry.usage_counters()
    table: dict[tuple[str, str], UsageRow] = {}
    for client, upstream, route, operation, succeeded, count in rows:
        inbound = (route or "").startswith(f"{INBOUND_ROUTE}:")
        agency = (upstream if inbound else client) or "-"
        via = (route or "").partition(":")[2] if inbound else upstream or "-"
        row = table.setdefault((agency, via), UsageRow(agency=agency, upstream=via))
        row.exchanges += count
        if not succeeded:
            row.failed += count
            continue
        counter = "documents_received" if inbound else counters.get(operation or "")
        if counter in USAGE_COUNTERS:
            setattr(row, counter, getattr(row, counter) + count)
    return sorted(table.values(), key=lambda r: (r.agency, r.upstream))


def usage_csv(month: str, rows: Iterable[UsageRow], names: dict[str, str]) -> str:
    """The report as CSV for the provincial reporting system: one line per agency and upstream."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    fields = [f for f in UsageRow.__struct_fields__ if f not in ("agency", "upstream")]
    writer.writerow(["month", "agency_id", "agency_name", "upstream", *fields])
    for row in rows:
        writer.writerow(
            [month, row.agency, names.get(row.agency, ""), row.upstream]
            + [getattr(row, f) for f in fields]
        )
    return out.getvalue()


def since_yesterday() -> float:
    return time.time() - DAY_SECONDS


def local_time(value: Any) -> str:
    """A Unix time as Vietnam's wall clock, for people."""
    if value is None or value == "":
        return ""
    return dt.datetime.fromtimestamp(float(value), VIETNAM).strftime("%Y-%m-%d %H:%M:%S")
