"""Store-and-forward through HTTP: 202 and a status URL, retries, dead letters, idempotency."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from litestar import Litestar, Request, Response, post
from litestar.testing import TestClient

from gateway.app import create_app
from gateway.auth import hash_key
from gateway.store.tables import message_log
from tests.support.config import TEST_ADMIN_KEY, TEST_KEY, write_config
from tests.support.servers import free_port, serve_in_thread


class Recorder:
    """A loopback upstream that remembers what it got and answers as told."""

    def __init__(self) -> None:
        self.mode = "ok"  # ok | fail (503) | refuse (400)
        self.received: list[tuple[str | None, bytes]] = []

        @post("/edoc", status_code=200)
        async def edoc(request: Request[Any, Any, Any]) -> Response[dict[str, str]]:
            self.received.append((request.headers.get("idempotency-key"), await request.body()))
            status = {"ok": 200, "fail": 503, "refuse": 400}[self.mode]
            return Response({"status": "OK" if status == 200 else "FAIL"}, status_code=status)

        self.app = Litestar([edoc])


CONFIG = """
storage: {{url: "sqlite:///DB"}}
delivery: {{backoff: 50ms, max_backoff: 100ms, poll_interval: 50ms, max_attempts: MAX, lease: 5s}}
admin: {{api_keys: ["{admin_key}"]}}
clients:
  - {{id: agency-a, name: Agency A, api_keys: ["{test_key}"]}}
  - {{id: agency-b, name: Agency B, api_keys: ["OTHER"]}}
upstreams:
  axis: {{type: http, base_url: "http://127.0.0.1:PORT"}}
  registry:
    type: stub
    operations: {{find: {{reply: {{body: {{so: "{{{{ body.so }}}}"}}}}}}}}
routes:
  - {{id: send, match: {{method: POST, path: /v1/documents}}, clients: ["*"], upstream: axis,
      operation: /edoc, delivery: async, timeout: 2s}}
  - {{id: find, match: {{method: POST, path: /v1/find}}, clients: ["*"], upstream: registry,
      operation: find}}
"""
KEY = {"x-api-key": TEST_KEY}
OTHER_KEY = "other-agency-key-0123456789"
ADMIN = {"x-api-key": TEST_ADMIN_KEY}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Callable[..., TestClient], int]]:  # type: ignore[type-arg]
    port = free_port()

    def make(max_attempts: int = 50) -> TestClient:  # type: ignore[type-arg]
        text = (
            CONFIG.replace("DB", f"{tmp_path}/gw.db")
            .replace("PORT", str(port))
            .replace("MAX", str(max_attempts))
            .replace("OTHER", hash_key(OTHER_KEY))
        )
        return TestClient(create_app(str(write_config(tmp_path, text))))

    yield make, port


def wait_for_state(client: TestClient, message_id: str, *states: str) -> dict[str, Any]:  # type: ignore[type-arg]
    deadline = time.monotonic() + 10
    while True:
        view: dict[str, Any] = client.get(f"/v1/messages/{message_id}", headers=KEY).json()
        assert "state" in view, view
        if view["state"] in states:
            return view
        assert time.monotonic() < deadline, f"still {view['state']}: {view}"
        time.sleep(0.05)


def test_accepted_while_the_upstream_is_down_delivered_once_when_it_is_back(
    setup: tuple[Callable[..., TestClient], int],  # type: ignore[type-arg]
) -> None:
    make, port = setup
    recorder = Recorder()
    with make() as client:
        accepted = client.post("/v1/documents", content=b"<edXML/>", headers=KEY)
        assert accepted.status_code == 202
        body = accepted.json()
        message_id = body["message_id"]
        assert body == {
            "message_id": message_id,
            "state": "queued",
            "status_url": f"/v1/messages/{message_id}",
        }
        assert accepted.headers["location"] == body["status_url"]
        assert accepted.headers["x-lgsp-message-id"] == message_id

        failing = wait_for_state(client, message_id, "failed")
        assert failing["attempts"] >= 1
        assert failing["last_error"].startswith("upstream_unavailable")
        other = client.get(f"/v1/messages/{message_id}", headers={"x-api-key": OTHER_KEY})
        assert other.status_code == 404  # only the sender may look

        with serve_in_thread(recorder.app, port=port):
            delivered = wait_for_state(client, message_id, "delivered")
        assert delivered["response"]["status"] == 200
        history = delivered["attempt_history"]
        assert history[-1]["outcome"] == "delivered"
        assert {h["outcome"] for h in history[:-1]} == {"upstream_unavailable"}

        store = client.app.state.holder.persistence.store

        async def kinds() -> list[str]:
            async with store.engine.connect() as connection:
                query = sa.select(message_log.c.kind).where(message_log.c.message_id == message_id)
                return sorted((await connection.execute(query)).scalars().all())

        assert client.blocking_portal.call(kinds) == ["accepted", "delivery"]
    assert recorder.received == [(message_id, b"<edXML/>")]


def test_dead_letter_after_max_attempts_then_admin_retry_and_discard(
    setup: tuple[Callable[..., TestClient], int],  # type: ignore[type-arg]
) -> None:
    make, port = setup
    recorder = Recorder()
    recorder.mode = "fail"
    with serve_in_thread(recorder.app, port=port), make(max_attempts=2) as client:
        first = client.post("/v1/documents", content=b"<a/>", headers=KEY).json()["message_id"]
        second = client.post("/v1/documents", content=b"<b/>", headers=KEY).json()["message_id"]
        dead = wait_for_state(client, first, "dead")
        wait_for_state(client, second, "dead")
        assert dead["attempts"] == 2
        assert dead["response"]["status"] == 503
        listed = client.get("/admin/deliveries?state=dead", headers=ADMIN).json()["items"]
        assert {item["message_id"] for item in listed} == {first, second}

        recorder.mode = "ok"
        retried = client.post("/admin/deliveries/retry", json={"message_id": first}, headers=ADMIN)
        assert retried.json() == {"requeued": 1}
        assert wait_for_state(client, first, "delivered")["response"]["status"] == 200

        no_reason = client.post(
            "/admin/deliveries/discard", json={"message_id": second, "reason": ""}, headers=ADMIN
        )
        assert no_reason.status_code == 422
        assert no_reason.json()["errors"][0]["path"] == "$.reason"
        discarded = client.post(
            "/admin/deliveries/discard",
            json={"message_id": second, "reason": "Văn bản gửi nhầm, đơn vị đã gửi lại"},
            headers=ADMIN,
        )
        assert discarded.json()["state"] == "discarded"
        (view,) = client.get(f"/admin/deliveries?message_id={second}", headers=ADMIN).json()[
            "items"
        ]
        who = "admin-key:" + hash_key(TEST_ADMIN_KEY)[7:19]  # which admin key, never the key
        assert view["discard_reason"] == f"{who}: Văn bản gửi nhầm, đơn vị đã gửi lại"
        again = client.post("/admin/deliveries/retry", json={"message_id": second}, headers=ADMIN)
        assert again.status_code == 404
    assert [key for key, _ in recorder.received].count(first) == 3


def test_a_refusal_by_the_upstream_is_not_retried(
    setup: tuple[Callable[..., TestClient], int],  # type: ignore[type-arg]
) -> None:
    make, port = setup
    recorder = Recorder()
    recorder.mode = "refuse"
    with serve_in_thread(recorder.app, port=port), make() as client:
        message_id = client.post("/v1/documents", content=b"<x/>", headers=KEY).json()["message_id"]
        view = wait_for_state(client, message_id, "dead")
    assert view["attempts"] == 1
    assert view["last_error"].startswith("upstream_refused")
    assert view["response"] == {
        "status": 400,
        "content_type": "application/json",
        "body": '{"status":"FAIL"}',
        "size": 17,
    }


def test_idempotency_key_on_a_sync_route(setup: tuple[Callable[..., TestClient], int]) -> None:  # type: ignore[type-arg]
    make, _ = setup
    with make() as client:
        registry = client.app.state.holder.current.adapters["registry"]
        headers = {**KEY, "idempotency-key": "motcua-2026-000123"}
        first = client.post("/v1/find", json={"so": "1"}, headers=headers)
        again = client.post("/v1/find", json={"so": "1"}, headers=headers)
        assert (first.status_code, again.status_code) == (200, 200)
        assert again.json() == first.json() == {"so": "1"}
        assert again.headers["idempotency-replayed"] == "true"
        assert "idempotency-replayed" not in first.headers
        assert registry.calls["find"] == 1
        conflict = client.post("/v1/find", json={"so": "2"}, headers=headers)
        assert conflict.status_code == 409
        assert conflict.json()["code"] == "idempotency_conflict"
        # Keys are per client: another agency may use the same key.
        other = client.post(
            "/v1/find", json={"so": "2"}, headers={**headers, "x-api-key": OTHER_KEY}
        )
        assert other.status_code == 200 and registry.calls["find"] == 2


def test_idempotency_key_on_an_async_route_queues_once(
    setup: tuple[Callable[..., TestClient], int],  # type: ignore[type-arg]
) -> None:
    make, port = setup
    recorder = Recorder()
    with serve_in_thread(recorder.app, port=port), make() as client:
        headers = {**KEY, "idempotency-key": "qlvb-vb-2026-77"}
        first = client.post("/v1/documents", content=b"<doc/>", headers=headers).json()
        again = client.post("/v1/documents", content=b"<doc/>", headers=headers).json()
        assert again["message_id"] == first["message_id"]
        wait_for_state(client, first["message_id"], "delivered")
        time.sleep(0.2)
    assert len(recorder.received) == 1


def test_a_worker_whose_lease_was_taken_over_changes_nothing(tmp_path: Path) -> None:
    import asyncio

    from adapters.base import GatewayRequest
    from gateway.config.model import DeliverySettings
    from gateway.delivery import LEASE_LOST, DeliveryQueue, Finished, Outcome
    from gateway.store import open_store
    from gateway.store.tables import deliveries

    async def scenario() -> tuple[str, str, list[str]]:
        store = await open_store(f"sqlite:///{tmp_path}/q.db")
        queue = DeliveryQueue(store, DeliverySettings(lease="1ms"))
        request = GatewayRequest(operation="/edoc", method="POST", path="/v1/documents")
        await queue.enqueue("m1", client="a", route="send", upstream="axis", request=request)
        (mine,) = await queue.claim("worker-a", "axis", 1)
        await asyncio.sleep(0.01)  # the lease runs out...
        taken = await queue.claim("worker-b", "axis", 1)  # ...and another worker takes it
        assert len(taken) == 1
        done = Outcome(delivered=True, retry=False, code="delivered", status=200)
        (late,) = await queue.finish_many("worker-a", [Finished(mine, done, 0.0, 0.1)])
        async with store.engine.connect() as connection:
            row = (
                await connection.execute(sa.select(deliveries.c.state, deliveries.c.leased_by))
            ).one()
        view = await queue.get("m1")
        await store.close()
        assert view is not None
        return late, f"{row.state}/{row.leased_by}", [a["worker"] for a in view["attempt_history"]]

    late, state, history = asyncio.run(scenario())
    assert late == LEASE_LOST
    assert state == "delivering/worker-b"  # still the new owner's
    assert history == ["worker-a"]  # what happened is kept


def test_a_worker_claims_only_for_upstreams_it_has(tmp_path: Path) -> None:
    import asyncio

    from adapters.base import GatewayRequest
    from gateway.config.model import DeliverySettings
    from gateway.delivery import DeliveryQueue, DeliveryWorker
    from gateway.store import open_store

    async def nothing(*finished: object) -> None:
        """Nothing is delivered here, so nothing is put on record."""

    async def scenario() -> int:
        store = await open_store(f"sqlite:///{tmp_path}/q.db")
        queue = DeliveryQueue(store, DeliverySettings())
        request = GatewayRequest(operation="/x", method="POST", path="/x")
        await queue.enqueue("m1", client="a", route="r", upstream="elsewhere", request=request)
        worker = DeliveryWorker(queue, "w", lambda r, u: None, nothing, lambda u: u != "elsewhere")
        await worker._turn()
        view = await queue.get("m1")
        await store.close()
        assert view is not None
        return int(view["attempts"])

    assert asyncio.run(scenario()) == 0


def test_finished_deliveries_are_purged_after_keep_finished_dead_letters_are_kept(
    storage_url: str,
) -> None:
    import asyncio

    from adapters.base import GatewayRequest
    from gateway.config.model import DeliverySettings
    from gateway.delivery import DeliveryQueue
    from gateway.store import open_store
    from gateway.store.tables import deliveries

    async def scenario() -> tuple[int, list[str]]:
        store = await open_store(storage_url)
        queue = DeliveryQueue(store, DeliverySettings())
        request = GatewayRequest(operation="/edoc", method="POST", path="/v1/documents")
        ended = {"old-ok": ("delivered", 100.0), "old-dropped": ("discarded", 100.0)}
        ended |= {"old-dead": ("dead", 100.0), "new-ok": ("delivered", time.time())}
        async with store.engine.begin() as connection:
            await connection.execute(deliveries.delete())
        for message_id, (state, updated_at) in ended.items():
            await queue.enqueue(
                message_id, client="a", route="send", upstream="axis", request=request
            )
            async with store.engine.begin() as connection:
                await connection.execute(
                    deliveries.update()
                    .where(deliveries.c.id == message_id)
                    .values(state=state, updated_at=updated_at)
                )
        purged = await queue.purge_finished(time.time() - 3600)
        async with store.engine.connect() as connection:
            left = (await connection.execute(sa.select(deliveries.c.id))).scalars().all()
        await store.close()
        return purged, sorted(left)

    purged, left = asyncio.run(scenario())
    assert purged == 2
    assert left == ["new-ok", "old-dead"]


def test_a_delivery_finished_but_not_recorded_is_recorded_after_a_restart(
    setup: tuple[Callable[..., TestClient], int],  # type: ignore[type-arg]
) -> None:
    """Marking delivered and recording it are two commits; a kill between them is repaired."""
    from gateway.store.tables import deliveries

    make, port = setup
    recorder = Recorder()

    def kinds(client: TestClient, message_id: str) -> list[str]:  # type: ignore[type-arg]
        store = client.app.state.holder.persistence.store

        async def query() -> list[str]:
            async with store.engine.connect() as connection:
                found = sa.select(message_log.c.kind).where(message_log.c.message_id == message_id)
                return sorted((await connection.execute(found)).scalars().all())

        return client.blocking_portal.call(query)

    with serve_in_thread(recorder.app, port=port), make() as client:
        message_id = client.post("/v1/documents", content=b"<a/>", headers=KEY).json()["message_id"]
        wait_for_state(client, message_id, "delivered")
        assert kinds(client, message_id) == ["accepted", "delivery"]
        store = client.app.state.holder.persistence.store

        async def lose_the_record() -> None:  # what a kill -9 between the two commits leaves
            async with store.engine.begin() as connection:
                await connection.execute(
                    message_log.delete().where(
                        message_log.c.message_id == message_id, message_log.c.kind == "delivery"
                    )
                )
                await connection.execute(deliveries.update().values(updated_at=time.time() - 120))

        client.blocking_portal.call(lose_the_record)
    with make() as client:  # the restart's housekeeping finds it
        deadline = time.monotonic() + 5
        while kinds(client, message_id) != ["accepted", "delivery"]:
            assert time.monotonic() < deadline, kinds(client, message_id)
            time.sleep(0.05)
    with make() as client:  # and records it once
        time.sleep(0.3)
        assert kinds(client, message_id) == ["accepted", "delivery"]
    assert len(recorder.received) == 1
