"""Exchange statistics per service, client and month, from the message log.

For the provincial reporting system and national monitoring: calls, errors, bytes each
way, median and 95th-percentile latency (nearest rank: the smallest latency at least that
share of calls did not exceed). One SQL statement, with window functions, that SQLite
(3.25+) and PostgreSQL both run; only the month's expression differs. Months are Vietnam's
(UTC+07:00). Counted: what clients sent on the data plane (records ``exchange`` and, for
async routes, ``accepted``); latency is the gateway's, arrival to answer.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import msgspec
import sqlalchemy as sa

from gateway.store import Store
from gateway.store.tables import message_log

VIETNAM_OFFSET_SECONDS = 7 * 3600
COLUMNS = (
    "month",
    "service",
    "client",
    "calls",
    "errors",
    "server_errors",
    "bytes_in",
    "bytes_out",
    "median_ms",
    "p95_ms",
)


class StatsFilter(msgspec.Struct, kw_only=True):
    since: float | None = None
    until: float | None = None
    client: str | None = None


def _month(store: Store, seconds: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    local = seconds + VIETNAM_OFFSET_SECONDS
    if store.is_postgres:
        utc = sa.func.timezone("UTC", sa.func.to_timestamp(local))
        return sa.func.to_char(utc, "YYYY-MM")
    return sa.func.strftime("%Y-%m", local, "unixepoch")


def _rank(percent: int, count: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """Nearest rank ceil(n * p / 100), in integer arithmetic both databases share."""
    return (count * percent + 99) // 100


async def statistics(
    store: Store, service_of_route: dict[str, str], where: StatsFilter
) -> list[dict[str, Any]]:
    """One row per (month, service, client), oldest month first."""
    if not service_of_route:
        return []
    c = message_log.c
    service = sa.case(service_of_route, value=c.route)
    latency = (c.t_response_out - c.t_request_in) * 1000.0
    base = sa.select(
        _month(store, c.t_request_in).label("month"),
        service.label("service"),
        c.client.label("client"),
        c.status.label("status"),
        c.bytes_in.label("bytes_in"),
        c.bytes_out.label("bytes_out"),
        latency.label("ms"),
    ).where(c.kind.in_(("exchange", "accepted")), c.route.in_(list(service_of_route)))
    if where.since is not None:
        base = base.where(c.t_request_in >= where.since)
    if where.until is not None:
        base = base.where(c.t_request_in < where.until)
    if where.client is not None:
        base = base.where(c.client == where.client)
    rows = base.subquery("base")
    group = (rows.c.month, rows.c.service, rows.c.client)
    ranked = sa.select(
        rows,
        sa.func.row_number().over(partition_by=group, order_by=rows.c.ms).label("rank"),
        sa.func.count().over(partition_by=group).label("n"),
    ).subquery("ranked")
    r = ranked.c

    def at(percent: int) -> sa.ColumnElement[Any]:
        return sa.func.max(sa.case((r.rank == _rank(percent, r.n), r.ms)))

    query = (
        sa.select(
            r.month,
            r.service,
            r.client,
            sa.func.count().label("calls"),
            sa.func.sum(sa.case((r.status >= 400, 1), else_=0)).label("errors"),
            sa.func.sum(sa.case((r.status >= 500, 1), else_=0)).label("server_errors"),
            sa.func.sum(r.bytes_in).label("bytes_in"),
            sa.func.sum(r.bytes_out).label("bytes_out"),
            at(50).label("median_ms"),
            at(95).label("p95_ms"),
        )
        .group_by(r.month, r.service, r.client)
        .order_by(r.month, r.service, r.client)
    )
    async with store.engine.connect() as connection:
        result = (await connection.execute(query)).all()
    return [
        {
            **{name: getattr(row, name) for name in COLUMNS},
            "median_ms": round(float(row.median_ms), 3),
            "p95_ms": round(float(row.p95_ms), 3),
            "bytes_in": int(row.bytes_in),
            "bytes_out": int(row.bytes_out),
        }
        for row in result
    ]


def as_csv(items: list[dict[str, Any]], columns: tuple[str, ...]) -> bytes:
    """Rows as CSV with a header line (UTF-8 with BOM, so spreadsheet software reads the
    Vietnamese right)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for item in items:
        writer.writerow({k: "" if item.get(k) is None else _cell(item[k]) for k in columns})
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return msgspec.json.encode(value).decode()
    return str(value)
