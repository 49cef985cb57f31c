"""The forwarding client (``adapters.http1``) against scripted upstreams on loopback.

Each upstream here is a raw TCP server whose answers are written byte for byte, so
the tests can send what well-behaved frameworks never do: a connection closed
between two requests, a body cut short, an answer that never comes.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import msgspec
import pytest
import uvloop

from adapters.base import AdapterContext, GatewayRequest
from adapters.errors import UpstreamError, UpstreamTimeout, UpstreamUnavailable
from adapters.http import HttpAdapter, HttpSettings
from adapters.http1 import Answer, Pool, decoded
from adapters.httpclient import OUTBOUND_HEADERS
from tests.support.servers import free_port

Handler = Callable[["Upstream", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"


class Upstream:
    """A scripted server: counts connections and records every request head and body."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Upstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next request's head (None at the end of the connection); its body recorded."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        body = await reader.readexactly(length)
        self.requests.append((head, body))
        return head

    def methods(self) -> list[str]:
        return [head.split(b" ", 1)[0].decode() for head, _ in self.requests]


def pool(port: int, *, max_connections: int = 10, max_keepalive: int = 10) -> Pool:
    return Pool(
        "up",
        "127.0.0.1",
        port,
        None,
        max_connections=max_connections,
        max_keepalive=max_keepalive,
        connect_timeout=2.0,
    )


def head(method: str = "GET", path: str = "/", body: bytes = b"") -> bytes:
    length = f"content-length: {len(body)}\r\n" if body or method == "POST" else ""
    return f"{method} {path} HTTP/1.1\r\nhost: up\r\n{length}\r\n".encode()


async def call(
    client: Pool, method: str = "GET", body: bytes = b"", seconds: float = 5.0
) -> Answer:
    return await client.request(method, head(method, body=body), body, time.monotonic() + seconds)


async def keep_answering(answer: bytes, upstream: Upstream, reader: Any, writer: Any) -> None:
    while await upstream.read_request(reader) is not None:
        writer.write(answer)
        await writer.drain()


def answer_once(answer: bytes) -> Handler:
    """Read one request, write ``answer``, close the connection."""

    async def handler(upstream: Upstream, reader: Any, writer: Any) -> None:
        await upstream.read_request(reader)
        writer.write(answer)
        await writer.drain()

    return handler


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """On asyncio's loop and on uvloop, the gateway's."""
    asyncio.run(test())
    uvloop.run(test())


def test_keep_alive_reuses_one_connection() -> None:
    async def test() -> None:
        async with Upstream(lambda u, r, w: keep_answering(OK, u, r, w)) as upstream:
            client = pool(upstream.port)
            answers = [await call(client) for _ in range(3)]
            assert not client.busy  # no answer is still watched for its deadline
            await client.aclose()
        assert [(a.status, a.body) for a in answers] == [(200, b"ok")] * 3
        assert answers[0].headers == [(b"content-type", b"text/plain"), (b"content-length", b"2")]
        assert upstream.connections == 1
        assert len(upstream.requests) == 3

    run(test)


def test_chunked_answer_is_joined() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"
    )

    async def test() -> None:
        async with Upstream(lambda u, r, w: keep_answering(chunked, u, r, w)) as upstream:
            client = pool(upstream.port)
            first, second = await call(client), await call(client, "POST", b'{"a": 1}')
            await client.aclose()
        assert first.body == second.body == b"hello world"
        assert upstream.connections == 1  # the chunked framing left the connection reusable
        assert upstream.requests[1][1] == b'{"a": 1}'

    run(test)


def test_a_large_body_goes_whole_both_ways() -> None:
    large = bytes(range(256)) * 1024  # 256 KiB: past the single write, many reads
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: " + str(len(large)).encode() + b"\r\n\r\n"

    async def test() -> None:
        async with Upstream(lambda u, r, w: keep_answering(answer + large, u, r, w)) as upstream:
            client = pool(upstream.port)
            got = await call(client, "POST", large)
            await client.aclose()
        assert upstream.requests[0][1] == large
        assert got.body == large

    run(test)


def test_an_answer_that_ends_with_the_connection() -> None:
    async def test() -> None:
        answer = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end"
        async with Upstream(answer_once(answer)) as upstream:
            client = pool(upstream.port)
            answers = [await call(client), await call(client)]
            await client.aclose()
        assert [a.body for a in answers] == [b"until the end"] * 2
        assert upstream.connections == 2  # "connection: close": none is reused

    run(test)


def closes_after_first_answer() -> Handler:
    """The first connection answers once, then takes the next request and closes unanswered:
    what a keep-alive timeout on the upstream's side looks like when it crosses a request."""

    async def handler(upstream: Upstream, reader: Any, writer: Any) -> None:
        if upstream.connections > 1:
            return await keep_answering(OK, upstream, reader, writer)
        await upstream.read_request(reader)
        writer.write(OK)
        await writer.drain()
        await upstream.read_request(reader)

    return handler


def test_a_closed_keep_alive_connection_is_retried_once_for_idempotent_methods() -> None:
    async def test() -> None:
        async with Upstream(closes_after_first_answer()) as upstream:
            client = pool(upstream.port)
            await call(client)
            answer = await call(client, "PUT", b"x")
            await client.aclose()
        assert answer.body == b"ok"
        assert upstream.methods() == ["GET", "PUT", "PUT"]
        assert upstream.connections == 2

    run(test)


def test_a_closed_keep_alive_connection_is_not_retried_for_post() -> None:
    async def test() -> None:
        async with Upstream(closes_after_first_answer()) as upstream:
            client = pool(upstream.port)
            await call(client)
            with pytest.raises(UpstreamUnavailable, match="closed the connection"):
                await call(client, "POST", b"x")
            answer = await call(client, "POST", b"y")  # the next call gets a new connection
            await client.aclose()
        assert answer.body == b"ok"
        assert upstream.methods() == ["GET", "POST", "POST"]
        assert [body for _, body in upstream.requests[1:]] == [b"x", b"y"]

    run(test)


def test_an_upstream_that_closes_an_idle_connection_costs_no_failure() -> None:
    async def test() -> None:
        async with Upstream(answer_once(OK)) as upstream:  # the client sees the close while idle
            client = pool(upstream.port)
            await call(client)
            await asyncio.sleep(0.05)
            answer = await call(client, "POST", b"x")
            await client.aclose()
        assert answer.body == b"ok"
        assert upstream.methods() == ["GET", "POST"]  # the POST went once, on a new connection

    run(test)


def test_a_body_cut_short_is_unavailable_and_not_retried() -> None:
    async def test() -> None:
        cut = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b"
        async with Upstream(answer_once(cut)) as upstream:
            client = pool(upstream.port)
            with pytest.raises(UpstreamUnavailable, match="up closed the connection"):
                await call(client)
            await client.aclose()
        assert upstream.methods() == ["GET"]

    run(test)


def test_an_upstream_that_never_answers_times_out_and_loses_the_connection() -> None:
    async def test() -> None:
        gone = asyncio.Event()

        async def handler(upstream: Upstream, reader: Any, writer: Any) -> None:
            await upstream.read_request(reader)
            await reader.read()  # no answer; returns when the client drops the connection
            gone.set()

        async with Upstream(handler) as upstream:
            client = pool(upstream.port)
            with pytest.raises(UpstreamTimeout, match="up did not answer in time"):
                await call(client, seconds=0.2)
            await asyncio.wait_for(gone.wait(), 5)
            assert (client.open, client.busy) == (0, set())
            await client.aclose()

    run(test)


def test_head_and_interim_answers() -> None:
    async def handler(upstream: Upstream, reader: Any, writer: Any) -> None:
        while (request := await upstream.read_request(reader)) is not None:
            if request.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" + OK)
            await writer.drain()

    async def test() -> None:
        async with Upstream(handler) as upstream:
            client = pool(upstream.port)
            headed = await call(client, "HEAD")
            got = await call(client)
            await client.aclose()
        assert (headed.status, headed.body) == (200, b"")
        assert (got.status, got.body) == (200, b"ok")
        assert (b"link", b"</a>") not in got.headers

    run(test)


def test_calls_past_max_connections_wait_for_a_free_one() -> None:
    async def test() -> None:
        async with Upstream(lambda u, r, w: keep_answering(OK, u, r, w)) as upstream:
            client = pool(upstream.port, max_connections=1)
            answers = await asyncio.gather(*(call(client) for _ in range(5)))
            await client.aclose()
        assert [a.body for a in answers] == [b"ok"] * 5
        assert upstream.connections == 1

    run(test)


def test_bytes_after_an_answer_drop_the_connection() -> None:
    async def test() -> None:
        async with Upstream(lambda u, r, w: keep_answering(OK + OK, u, r, w)) as upstream:
            client = pool(upstream.port)
            answers = [await call(client), await call(client)]
            await client.aclose()
        assert [a.body for a in answers] == [b"ok", b"ok"]
        assert upstream.connections == 2  # the second answer nobody asked for: not reused

    run(test)


def test_a_closed_port_is_unavailable() -> None:
    async def test() -> None:
        client = pool(free_port())
        with pytest.raises(UpstreamUnavailable, match="cannot connect to up"):
            await call(client)
        assert client.open == 0

    run(test)


def test_a_failed_tls_handshake_is_unavailable_and_frees_its_slot() -> None:
    async def plain(upstream: Upstream, reader: Any, writer: Any) -> None:
        writer.write(OK)  # plain HTTP at once, where the client waits for a TLS server hello
        await writer.drain()

    async def test() -> None:
        async with Upstream(plain) as upstream:
            client = pool(upstream.port)
            client.context = ssl.create_default_context()
            for _ in range(2):
                with pytest.raises(UpstreamUnavailable, match="cannot connect to up"):
                    await client.request("GET", head(), b"", time.monotonic() + 5)
            assert client.open == 0

    run(test)


def test_malformed_answer_is_unavailable() -> None:
    async def test() -> None:
        garbage = b"HTTP/1.1 abc\r\n\r\n"
        async with Upstream(lambda u, r, w: keep_answering(garbage, u, r, w)) as upstream:
            client = pool(upstream.port)
            with pytest.raises(UpstreamUnavailable, match="malformed answer"):
                await call(client)
            await client.aclose()

    run(test)


def test_decoded_bodies() -> None:
    assert decoded(gzip.compress(b"xin chao"), "gzip") == b"xin chao"
    assert decoded(b"plain", "identity") == b"plain"
    with pytest.raises(UpstreamError, match="not offer"):
        decoded(b"...", "br")
    with pytest.raises(UpstreamError, match="not decodable"):
        decoded(b"not gzip", "gzip")


def test_adapter_request_head_and_answer_mapping() -> None:
    """What the http adapter writes and how it maps what comes back."""
    body = gzip.compress(b'{"ok": true}')
    answer = (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nServer: x\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )

    async def test() -> None:
        async with Upstream(lambda u, r, w: keep_answering(answer, u, r, w)) as upstream:
            settings = msgspec.convert(
                {
                    "base_url": f"http://127.0.0.1:{upstream.port}/api/",
                    "headers": {"X-Upstream-Token": "t0ken"},
                },
                HttpSettings,
            )
            adapter = HttpAdapter("up", settings, AdapterContext(".", "."))
            request = GatewayRequest(
                operation="",
                method="POST",
                path="/ho tich/100%",
                body=b"{}",
                headers={"accept-encoding": "br", "x-request-id": "r-1", "x-upstream-token": "no"},
                query="a=1&b=%20",
                deadline=time.monotonic() + 5,
            )
            token = OUTBOUND_HEADERS.set({"traceparent": "00-abc-def-01"})
            try:
                response = await adapter.handle(request)
            finally:
                OUTBOUND_HEADERS.reset(token)
            await adapter.aclose()
        assert response.status == 201
        assert response.body == b'{"ok": true}'
        assert response.content_type == "application/json"
        assert response.headers == {"set-cookie": "a=1, b=2"}
        sent, sent_body = upstream.requests[0]
        lines = sent.decode().split("\r\n")
        assert lines[0] == "POST /api/ho%20tich/100%25?a=1&b=%20 HTTP/1.1"
        pairs = [line.split(": ", 1) for line in lines[1:] if line]
        fields = dict(pairs)
        assert len(fields) == len(pairs)  # each header once
        assert fields["host"] == f"127.0.0.1:{upstream.port}"
        assert fields["x-upstream-token"] == "t0ken"  # the upstream's settings win
        assert fields["accept-encoding"] == "gzip, deflate"  # only what the gateway decodes
        assert fields["traceparent"] == "00-abc-def-01"
        assert fields["content-length"] == "2"
        assert sent_body == b"{}"

    run(test)


def test_adapter_targets() -> None:
    """Where the adapter sends a call: paths percent-encoded once, an operation's query kept."""
    settings = msgspec.convert({"base_url": "https://up.example/v2"}, HttpSettings)
    adapter = HttpAdapter("up", settings, AdapterContext(".", "."))

    def target(operation: str, path: str = "/x", **params: str) -> tuple[str, str]:
        request = GatewayRequest(operation=operation, method="POST", path=path, path_params=params)
        return adapter._target(request)

    assert target("", "/a b/ü") == ("POST", "/v2/a%20b/%C3%BC")
    assert target("GET /records/{so}", so="HT/01?x") == ("GET", "/v2/records/HT%2F01%3Fx")
    assert target("/search?kind=1&q={so}", so="a") == ("POST", "/v2/search?kind=1&q=a")
    assert adapter.defaults["host"] == "up.example"
