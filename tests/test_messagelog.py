"""The message log: every exchange on record, chained, verifiable, searchable."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import signal
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
import sqlalchemy as sa
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.cli import main
from gateway.messagelog import (
    MAX_BATCH,
    AuditRecord,
    LogUnavailable,
    MessageLog,
    purge,
    record_hash,
    sha256_hex,
    verify_chains,
)
from gateway.store import Store, open_store, sqlite_writer
from gateway.store.tables import message_log
from tests.support.config import BASE_CONFIG, TEST_ADMIN_KEY, TEST_KEY, write_config

T = TypeVar("T")


def run(work: Callable[[Store], Awaitable[T]], url: str) -> T:
    async def main() -> T:
        store = await open_store(url)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(main())


def record(index: int, at: float | None = None) -> AuditRecord:
    return AuditRecord(
        message_id=uuid.uuid4().hex,
        request_id=f"req-{index}",
        client="motcua-demo",
        route="population-citizen-lookup",
        method="POST",
        path="/v1/population/citizens/lookup",
        t_request_in=at or time.time(),
        t_response_out=at or time.time(),
        status=200,
        request_sha256=sha256_hex(b"request %d" % index),
        response_sha256=sha256_hex(b"response %d" % index),
        request_body=bytes([index % 256, 0, 255]) if index % 2 else None,  # not UTF-8
        signature='{"valid": true, "signer": "Nguyễn Văn An"}' if index % 3 else None,
    )


async def write(store: Store, count: int, at: float | None = None) -> str:
    log = MessageLog(store)
    await log.start()
    await asyncio.gather(*(log.append(record(i, at)) for i in range(count)))
    await log.close()
    return log.log_id


async def report_of(store: Store, log_id: str) -> Any:
    (report,) = await verify_chains(store, log_id)
    return report


async def seqs_of(store: Store, log_id: str) -> list[int]:
    async with store.engine.connect() as connection:
        query = sa.select(message_log.c.seq).where(message_log.c.log_id == log_id)
        return sorted((await connection.execute(query)).scalars().all())


def test_concurrent_appends_form_one_unbroken_chain(storage_url: str) -> None:
    count = 2 * MAX_BATCH + 200  # more than one batch can take

    async def work(store: Store) -> Any:
        log_id = await write(store, count)
        return await seqs_of(store, log_id), await report_of(store, log_id)

    seqs, report = run(work, storage_url)
    assert seqs == list(range(1, count + 1))
    assert report.ok and report.records == count


def test_a_failed_batch_is_refused_and_leaves_no_gap(storage_url: str) -> None:
    """Every record of a batch the database refuses gets ``LogUnavailable`` (its requests are
    answered 503); the chain goes on from the last committed record."""

    async def work(store: Store) -> Any:
        log = MessageLog(store)
        await log.start()
        await log.append(record(0))
        unstorable = msgspec.structs.replace(record(1), method=None)  # NOT NULL column
        refused = await asyncio.gather(
            log.append(unstorable), log.append(record(2)), return_exceptions=True
        )
        numbers = [await log.append(record(i)) for i in (3, 4)]
        await log.close()
        return (
            refused,
            numbers,
            await seqs_of(store, log.log_id),
            await report_of(store, log.log_id),
        )

    refused, numbers, seqs, report = run(work, storage_url)
    assert [type(outcome) for outcome in refused] == [LogUnavailable, LogUnavailable]
    assert numbers == [2, 3]
    assert seqs == [1, 2, 3]
    assert report.ok and report.records == 3


def test_a_batch_whose_answer_was_lost_is_not_written_twice(storage_url: str) -> None:
    """The writer can commit a batch and die before it says so (a writer process killed, a
    connection dropped). Its requests were refused, but the records are stored: the chain
    goes on after them instead of reusing their numbers."""

    async def work(store: Store) -> Any:
        log = MessageLog(store)
        await log.start()
        await log.append(record(0))
        appender = log._appender
        append = appender.append

        async def commit_then_fail(rows: Any) -> None:
            appender.append = append  # once
            await append(rows)
            raise ConnectionResetError("the answer was lost")

        appender.append = commit_then_fail  # type: ignore[method-assign]
        refused = await asyncio.gather(log.append(record(1)), return_exceptions=True)
        number = await log.append(record(2))
        await log.close()
        return refused, number, await seqs_of(store, log.log_id), await report_of(store, log.log_id)

    refused, number, seqs, report = run(work, storage_url)
    assert [type(outcome) for outcome in refused] == [LogUnavailable]
    assert number == 3
    assert seqs == [1, 2, 3]
    assert report.ok and report.records == 3


class GatewayGone(io.BytesIO):
    def write(self, data: Any) -> int:
        raise BrokenPipeError


def test_the_sqlite_writer_commits_answers_and_outlives_its_gateway(tmp_path: Path) -> None:
    """The writer process's loop, fed directly: each batch is committed and answered (None, or
    SQLite's error, and it goes on); when its gateway died waiting, it ends quietly with
    the batch committed."""
    path = str(tmp_path / "w.db")
    setup = (path, ("PRAGMA journal_mode=WAL",), "INSERT INTO t (a, b) VALUES ", "(?, ?)")
    sqlite3.connect(path).execute("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT NOT NULL)")
    batches = [[(1, "x"), (2, "y")], [(3, None)], [(4, "z")]]
    source = io.BytesIO(b"".join(sqlite_writer.frame(value) for value in [setup, *batches]))
    sink = io.BytesIO()
    sqlite_writer.serve(source, sink)
    answers = io.BytesIO(sink.getvalue())
    replies = [sqlite_writer.read_frame(answers) for _ in batches]
    assert replies[0] is None and replies[2] is None
    assert replies[1] == ("IntegrityError", "NOT NULL constraint failed: t.b")

    late = io.BytesIO(sqlite_writer.frame(setup) + sqlite_writer.frame([(5, "late")]))
    sqlite_writer.serve(late, GatewayGone())  # returns, no traceback
    stored = sqlite3.connect(path).execute("SELECT a FROM t ORDER BY a").fetchall()
    assert stored == [(1,), (2,), (4,), (5,)]


def test_waiting_for_the_sqlite_write_lock_holds_only_the_writer(tmp_path: Path) -> None:
    """While another connection holds SQLite's write lock, the writer waits for it in its
    own process: the event loop goes on (here, it is what releases the lock), and the
    record is committed once the lock is free."""
    url = f"sqlite:///{tmp_path}/gateway.db"

    async def work(store: Store) -> Any:
        log = MessageLog(store)
        await log.start()
        await log.append(record(0))  # the writer's connection is open
        other = sqlite3.connect(str(tmp_path / "gateway.db"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        appending = asyncio.create_task(log.append(record(1)))
        for _ in range(20):  # the loop keeps turning while the append waits
            await asyncio.sleep(0.005)
        waited = not appending.done()
        other.execute("COMMIT")
        other.close()
        number = await appending
        await log.close()
        return waited, number, await report_of(store, log.log_id)

    waited, number, report = run(work, url)
    assert waited
    assert number == 2
    assert report.ok and report.records == 2


@pytest.mark.parametrize(
    ("tamper", "broken_at", "reason"),
    [
        ("edit", 5, "content was changed"),
        ("delete", 5, "record 5 is missing"),
        ("insert", 5, "does not follow the previous record"),
        ("edit_and_rehash", 6, "does not follow the previous record"),
    ],
)
def test_tampering_is_detected_at_the_first_broken_record(
    storage_url: str, tamper: str, broken_at: int, reason: str
) -> None:
    async def work(store: Store) -> Any:
        log_id = await write(store, 10)
        c = message_log.c
        mine = c.log_id == log_id
        async with store.engine.begin() as connection:
            if tamper == "edit":
                await connection.execute(
                    message_log.update().where(mine, c.seq == 5).values(status=404)
                )
            elif tamper == "delete":
                await connection.execute(message_log.delete().where(mine, c.seq == 5))
            elif tamper == "insert":  # make room at 5, then slip a forged record in
                for seq in range(10, 4, -1):
                    await connection.execute(
                        message_log.update().where(mine, c.seq == seq).values(seq=seq + 1)
                    )
                forged = msgspec.structs.asdict(record(99))
                forged.update(log_id=log_id, seq=5, prev_hash="f" * 64, hash="e" * 64)
                await connection.execute(message_log.insert().values(**forged))
            else:  # a forger who recomputes the edited record's own hash: its successor objects
                row = (
                    await connection.execute(sa.select(message_log).where(mine, c.seq == 5))
                ).one()
                edited = AuditRecord(**{f: getattr(row, f) for f in AuditRecord.__struct_fields__})
                edited.client = "someone-else"
                await connection.execute(
                    message_log.update()
                    .where(mine, c.seq == 5)
                    .values(
                        client="someone-else", hash=record_hash(row.prev_hash, log_id, 5, edited)
                    )
                )
        return await report_of(store, log_id)

    report = run(work, storage_url)
    assert not report.ok
    assert (report.broken_at, report.reason) == (broken_at, reason)


def test_purge_keeps_the_chain_verifiable_and_archives(storage_url: str, tmp_path: Path) -> None:
    old = time.time() - 400 * 86400

    async def work(store: Store) -> Any:
        log = MessageLog(store)
        await log.start()
        for i in range(6):
            await log.append(record(i, old if i < 4 else None))
        await log.close()
        purged = await purge(store, time.time() - 365 * 86400, str(tmp_path / "archive"))
        return purged, await report_of(store, log.log_id)

    purged, report = run(work, storage_url)
    assert purged == 4
    assert report.ok and report.records == 2 and report.first_seq == 5
    (archive,) = (tmp_path / "archive").iterdir()
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4]


# --- through HTTP ---

CONFIG = """
storage: {{url: "STORAGE"}}
message_log: {{max_body_size: 200B}}
upstreams:
  registry:
    type: stub
    operations:
      find: {{reply: {{body: {{so_dinh_danh: "{{{{ body.so_dinh_danh }}}}", ho_va_ten: Nguyễn Văn An}}}}}}
routes:
  - id: kept
    match: {{method: POST, path: /kept}}
    clients: ["*"]
    upstream: registry
    operation: find
    message_log: {{bodies: true}}
  - id: plain
    match: {{method: POST, path: /plain}}
    clients: ["*"]
    upstream: registry
    operation: find
"""
KEY = {"x-api-key": TEST_KEY}
ADMIN = {"x-api-key": TEST_ADMIN_KEY}


def gateway(tmp_path: Path, storage_url: str) -> TestClient:  # type: ignore[type-arg]
    path = write_config(tmp_path, BASE_CONFIG + CONFIG.replace("STORAGE", storage_url))
    return TestClient(create_app(str(path)))


def rows_for(storage_url: str, message_id: str) -> list[Any]:
    async def work(store: Store) -> list[Any]:
        async with store.engine.connect() as connection:
            query = sa.select(message_log).where(message_log.c.message_id == message_id)
            return list((await connection.execute(query)).all())

    return run(work, storage_url)


def test_every_exchange_is_recorded_with_digests(tmp_path: Path, storage_url: str) -> None:
    body = b'{"so_dinh_danh": "001203012345"}'
    with gateway(tmp_path, storage_url) as client:
        response = client.post(
            "/plain", content=body, headers={**KEY, "content-type": "application/json"}
        )
        refused = client.post("/plain", content=body)
    (row,) = rows_for(storage_url, response.headers["x-lgsp-message-id"])
    assert (row.client, row.route, row.upstream, row.status, row.kind) == (
        "agency-a",
        "plain",
        "registry",
        200,
        "exchange",
    )
    assert row.request_sha256 == sha256_hex(body)
    assert row.response_sha256 == sha256_hex(response.content)
    assert row.t_request_in <= row.t_upstream_out <= row.t_upstream_in <= row.t_response_out
    assert row.request_body is None and row.response_body is None  # the route keeps no bodies
    (unauthenticated,) = rows_for(storage_url, refused.headers["x-lgsp-message-id"])
    assert (unauthenticated.status, unauthenticated.error_code) == (401, "unauthenticated")


def test_kept_bodies_are_masked_and_capped(tmp_path: Path, storage_url: str) -> None:
    with gateway(tmp_path, storage_url) as client:
        response = client.post(
            "/kept", json={"so_dinh_danh": "001203012345", "ghi_chu": "x" * 500}, headers=KEY
        )
    (row,) = rows_for(storage_url, response.headers["x-lgsp-message-id"])
    assert row.request_body.startswith(b'{"so_dinh_danh":"001******345"')
    assert len(row.request_body) == 200
    assert json.loads(row.response_body) == {"so_dinh_danh": "001******345", "ho_va_ten": "N***"}


def test_an_unrecordable_exchange_is_not_acknowledged(tmp_path: Path) -> None:
    with gateway(tmp_path, f"sqlite:///{tmp_path}/gw.db") as client:
        store = client.app.state.holder.persistence.store

        async def lose_the_table() -> None:
            async with store.engine.begin() as connection:
                await connection.execute(sa.text("DROP TABLE message_log"))

        client.blocking_portal.call(lose_the_table)
        response = client.post("/plain", json={"so_dinh_danh": "001203012345"}, headers=KEY)
    assert response.status_code == 503
    assert response.json()["code"] == "log_unavailable"


LOOKUP = {"so_dinh_danh": "001203012345"}


@contextlib.contextmanager
def answered_once(tmp_path: Path) -> Iterator[tuple[TestClient, Any, Any]]:  # type: ignore[type-arg]
    """A gateway on SQLite that has answered one request: it, its log, its writer process."""
    with gateway(tmp_path, f"sqlite:///{tmp_path}/gw.db") as client:
        assert client.post("/plain", json=LOOKUP, headers=KEY).status_code == 200
        message_log = client.app.state.holder.persistence.message_log
        yield client, message_log, message_log._appender.process


def test_a_dead_sqlite_writer_process_is_replaced(tmp_path: Path) -> None:
    """The SQLite writer runs in a process of its own. If it dies, the request whose record
    it held is refused (503: not on record, not acknowledged) and the next one starts a new
    writer; the chain stays whole."""
    with answered_once(tmp_path) as (client, message_log, writer):
        writer.kill()
        client.blocking_portal.call(writer.wait)
        refused = client.post("/plain", json=LOOKUP, headers=KEY)
        after = client.post("/plain", json=LOOKUP, headers=KEY)
        replaced = message_log._appender.process.pid != writer.pid
        log_id = message_log.log_id
    assert [refused.status_code, after.status_code] == [503, 200]
    assert refused.json()["code"] == "log_unavailable"
    assert replaced
    report = run(lambda store: report_of(store, log_id), f"sqlite:///{tmp_path}/gw.db")
    assert report.ok and report.records == 2


def test_the_sqlite_writer_process_outlives_signals_sent_to_the_group(tmp_path: Path) -> None:
    """A terminal's Ctrl-C or a service manager's stop signals every process of the group;
    the writer stays until the gateway, shutting down, has written its last records."""
    with answered_once(tmp_path) as (client, message_log, writer):
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            writer.send_signal(number)
        time.sleep(0.2)
        after = client.post("/plain", json=LOOKUP, headers=KEY)
        same = message_log._appender.process is writer and writer.returncode is None
    assert after.status_code == 200
    assert same
    assert writer.returncode == 0  # it left when the gateway closed its input


def test_a_log_failing_otherwise_is_internal_error_never_a_plain_500(tmp_path: Path) -> None:
    """What escapes the pipeline (here the message log failing with an unexpected error) is
    answered as the gateway's problem, with the request id; nothing of the error leaks."""
    with gateway(tmp_path, f"sqlite:///{tmp_path}/gw.db") as client:
        message_log = client.app.state.holder.persistence.message_log

        async def broken(entry: object) -> None:
            raise RuntimeError("secret internals: /var/lib/lgsp/log.db")

        message_log.append = broken
        response = client.post("/plain", json={"so_dinh_danh": "001203012345"}, headers=KEY)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "internal_error" and "secret" not in response.text
    assert body["request_id"] == response.headers["x-request-id"]


def test_admin_search_pages_export_and_verify(tmp_path: Path, storage_url: str) -> None:
    with gateway(tmp_path, storage_url) as client:
        ids = [
            client.post("/plain", json={"so_dinh_danh": f"00120301234{i}"}, headers=KEY).headers[
                "x-lgsp-message-id"
            ]
            for i in range(5)
        ]
        assert client.get("/admin/messages").status_code == 401
        since = time.time() - 60
        first = client.get(
            f"/admin/messages?route=plain&limit=3&since={since}", headers=ADMIN
        ).json()
        second = client.get(
            f"/admin/messages?route=plain&limit=3&since={since}&cursor={first['next_cursor']}",
            headers=ADMIN,
        ).json()
        found = [item["message_id"] for item in first["items"] + second["items"]]
        assert ids == [i for i in found if i in ids]
        assert second["next_cursor"] is None
        one = client.get(f"/admin/messages?message_id={ids[2]}", headers=ADMIN).json()["items"]
        assert [item["status"] for item in one] == [200]
        exported = client.get("/admin/messages/export?route=plain", headers=ADMIN)
        assert exported.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in exported.text.splitlines()]
        assert {line["message_id"] for line in lines} >= set(ids)
        verified = client.get("/admin/messages/verify", headers=ADMIN).json()
        mine = client.app.state.holder.persistence.message_log.log_id
        (chain,) = [c for c in verified["chains"] if c["log_id"] == mine]
        assert chain["ok"] is True and chain["records"] >= 5
        bad = client.get("/admin/messages?since=yesterday", headers=ADMIN)
        assert bad.status_code == 400 and "since" in bad.json()["detail"]
        purge_bad = client.post("/admin/messages/purge", json={"older_than": "soon"}, headers=ADMIN)
        assert purge_bad.status_code == 422
        assert purge_bad.json()["errors"][0]["path"] == "$.older_than"
        purged = client.post("/admin/messages/purge", json={"older_than": "1d"}, headers=ADMIN)
        assert purged.json()["purged"] == 0


def test_cli_log_verify_names_the_broken_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path}/cli.db"
    config = write_config(tmp_path, BASE_CONFIG + f'storage: {{{{url: "{url}"}}}}\n')
    log_id = run(lambda store: write(store, 4), url)
    assert main(["log", "verify", "--config", str(config)]) == 0
    assert f"{log_id}: OK (4 records from 1)" in capsys.readouterr().out

    async def tamper(store: Store) -> None:
        async with store.engine.begin() as connection:
            await connection.execute(
                message_log.update().where(message_log.c.seq == 3).values(path="/forged")
            )

    run(tamper, url)
    assert main(["log", "verify", "--config", str(config)]) == 1
    assert f"{log_id}: BROKEN at record 3: content was changed" in capsys.readouterr().out


def test_a_client_that_leaves_midway_is_on_record_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    with gateway(tmp_path, url) as client:
        app = client.app
        sent: list[dict[str, Any]] = []
        messages = iter(
            [
                {"type": "http.request", "body": b'{"so_dinh_danh": ', "more_body": True},
                {"type": "http.disconnect"},
            ]
        )

        async def receive() -> dict[str, Any]:
            return next(messages)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/plain",
            "raw_path": b"/plain",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"x-api-key", TEST_KEY.encode()), (b"content-type", b"application/json")],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        client.blocking_portal.call(app, scope, receive, send)
    assert sent == []  # nobody to answer

    async def last(store: Store) -> Any:
        async with store.engine.connect() as connection:
            query = sa.select(message_log).order_by(message_log.c.t_request_in.desc()).limit(1)
            return (await connection.execute(query)).one()

    row = run(last, url)
    assert (row.status, row.error_code, row.route) == (499, "client_disconnected", "plain")
