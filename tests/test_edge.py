"""Limits at the edge and admission control, over raw sockets against a real uvicorn server.

Every refusal here happens before authentication (no key is sent unless the
test needs a request to get into the pipeline), and is answered problem+json
where the server can still answer.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import msgspec
import pytest

from gateway import edge
from gateway.app import create_app
from gateway.config.model import ServerSettings
from tests.support.config import BASE_CONFIG, TEST_KEY, write_config
from tests.support.servers import lifespan, serve_in_thread

SERVER = ServerSettings(
    max_header_size="4KiB",
    max_headers=20,
    header_timeout="500ms",
    body_timeout="500ms",
    keep_alive_timeout="500ms",
    max_connections=8,
    max_in_flight=2,
    queue_timeout="200ms",
)
ROUTES = """
upstreams:
  echo:
    type: stub
    operations:
      ok: {{reply: {{body: {{ok: true}}}}}}
routes:
  - {{id: one, match: {{method: POST, path: /v1/one}}, clients: ["*"], upstream: echo,
      operation: ok, max_in_flight: 1}}
  - {{id: slow-body, match: {{method: POST, path: /v1/slow-body}}, clients: ["*"],
      upstream: echo, operation: ok, timeout: 1s}}
  - {{id: other, match: {{method: POST, path: /v1/other}}, clients: ["*"], upstream: echo,
      operation: ok}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    directory = tmp_path_factory.mktemp("edge")
    settings = msgspec.json.encode(SERVER).decode()  # JSON is YAML
    text = BASE_CONFIG + f"server: {settings}\n".replace("{", "{{").replace("}", "}}") + ROUTES
    app = create_app(str(write_config(directory, text)))
    with serve_in_thread(app, **edge.uvicorn_options(SERVER)) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def connect(server: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(server)
    sock.settimeout(10)  # a bound for a broken test, not a measured time
    return sock


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The status line and headers of the next response, and what came after them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before an answer: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one response (Content-Length framed) from ``sock``."""
    head, body = read_head(sock)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def closed(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def problem(headers: dict[str, str], body: bytes) -> dict[str, object]:
    assert headers["content-type"] == "application/problem+json"
    document: dict[str, object] = json.loads(body)
    assert document["request_id"] == headers["x-request-id"]
    return document


def post(path: str, length: int, body: bytes = b"", *, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nX-API-Key: {TEST_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n"
    ).encode() + body


def test_a_header_block_over_the_limit_is_431_before_authentication(
    server: tuple[str, int],
) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192 + b"\r\n\r\n")
        status, headers, body = answer(sock)
        assert status == 431
        assert problem(headers, body)["code"] == "headers_too_large"
        assert headers["connection"] == "close" and closed(sock)


def test_too_many_headers_is_431(server: tuple[str, int]) -> None:
    many = "".join(f"X-{n}: a\r\n" for n in range(30))
    with connect(server) as sock:
        sock.sendall(f"GET /health/live HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
        status, headers, body = answer(sock)
        assert status == 431 and problem(headers, body)["code"] == "headers_too_large"


def test_a_header_block_within_the_limits_is_served(server: tuple[str, int]) -> None:
    few = "".join(f"X-{n}: {'a' * 100}\r\n" for n in range(15))
    with connect(server) as sock:
        sock.sendall(f"GET /health/live HTTP/1.1\r\nHost: x\r\n{few}\r\n".encode())
        assert answer(sock)[0] == 200


def test_head_then_get_on_one_connection_each_get_their_own_answer(
    server: tuple[str, int],
) -> None:
    """The head of an answer waits for its body (one write); a HEAD's, which has none, still
    goes out, and alone: the next answer on the connection starts right after it."""
    with connect(server) as sock:
        sock.sendall(b"HEAD /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        head, rest = read_head(sock)
        assert head.startswith(b"HTTP/1.1 200") and b"content-length: 35" in head.lower()
        assert rest == b""
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = answer(sock)
        assert status == 200 and json.loads(body)["status"] == "live"
        sock.sendall(post("/v1/other", 2, b"{}", extra="Connection: close\r\n"))
        status, headers, body = answer(sock)
        assert status == 200 and json.loads(body) == {"ok": True}
        assert headers["connection"] == "close" and closed(sock)


def test_what_is_not_http_is_400_and_closed(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost x\r\n\r\n")  # no colon
        status, headers, body = answer(sock)
        assert status == 400 and problem(headers, body)["code"] == "malformed_request"
        assert closed(sock)


def test_pipelined_requests_are_answered_in_order(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(
            post("/v1/other", 2, b"{}")
            + b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"
            + post("/v1/other", 2, b"{}", extra="Connection: close\r\n")
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        answers = data.split(b"HTTP/1.1 ")[1:]
        assert [a[:3] for a in answers] == [b"200"] * 3
        assert b'"ok":true' in answers[0] and b'"live"' in answers[1]
        assert b'"ok":true' in answers[2]


def test_a_client_that_expects_100_continue_gets_it_before_sending_the_body(
    server: tuple[str, int],
) -> None:
    with connect(server) as sock:
        sock.sendall(post("/v1/other", 2, extra="Expect: 100-continue\r\n"))
        interim = sock.recv(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"{}")
        status, _, body = answer(sock)
        assert status == 200 and json.loads(body) == {"ok": True}


def test_a_chunked_body_and_http_1_0_are_served(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        head = post("/v1/other", 0).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
        sock.sendall(head + b"1\r\n{\r\n")
        sock.sendall(b"1\r\n}\r\n0\r\n\r\n")
        status, _, body = answer(sock)
        assert status == 200 and json.loads(body) == {"ok": True}
    with connect(server) as sock:  # HTTP/1.0 without keep-alive: answered, then closed
        sock.sendall(b"GET /health/live HTTP/1.0\r\n\r\n")
        status, headers, _ = answer(sock)
        assert status == 200 and headers["connection"] == "close" and closed(sock)


def test_an_application_that_fails_gets_a_500_problem_not_a_hang() -> None:
    """The edge answers the pipeline's errors itself; this is the protocol's backstop."""

    async def failing(scope: dict[str, object], receive: object, send: object) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)  # type: ignore[arg-type]
            return
        raise RuntimeError("boom")

    with serve_in_thread(failing, **edge.uvicorn_options(SERVER)) as url:
        host, port = url.removeprefix("http://").split(":")
        with connect((host, int(port))) as sock:
            sock.sendall(b"GET /anything HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = answer(sock)
            assert status == 500 and problem(headers, body)["code"] == "internal_error"
            assert closed(sock)


def test_an_endless_header_is_cut_off_before_it_is_all_read(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        with pytest.raises(OSError):  # the gateway answered and closed: writing fails
            while sent < 256 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
        assert sent < 16 * 1024 * 1024


def test_headers_that_do_not_arrive_in_time_are_408(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        status, headers, body = answer(sock)
        assert status == 408 and problem(headers, body)["code"] == "request_timeout"
        assert closed(sock)


def test_a_connection_that_sends_nothing_is_closed(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        assert closed(sock)


def test_an_idle_kept_alive_connection_is_closed(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer(sock)[0] == 200
        assert closed(sock)


def test_a_body_that_stops_arriving_is_408_and_closed(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(post("/v1/other", 100, b"{"))
        status, headers, body = answer(sock)
        document = problem(headers, body)
        assert status == 408 and document["code"] == "request_timeout"
        assert "stopped arriving" in str(document["detail"])
        assert closed(sock)


def trickle(sock: socket.socket) -> None:
    """A byte every 200 ms (never idle for body_timeout) until the gateway answers or closes."""
    for _ in range(100):
        if select.select([sock], [], [], 0.2)[0]:
            return
        try:
            sock.sendall(b" ")
        except OSError:
            return
    raise AssertionError("the gateway neither answered nor closed")


def test_a_trickled_body_is_cut_at_the_routes_timeout(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(post("/v1/slow-body", 100_000, b"{"))
        trickle(sock)
        status, headers, body = answer(sock)
        document = problem(headers, body)
        assert status == 408 and "route's timeout" in str(document["detail"])


def test_the_rest_of_a_body_after_the_answer_is_not_waited_for_forever(
    server: tuple[str, int],
) -> None:
    with connect(server) as sock:  # no key: 401 at once, with most of the body unsent
        sock.sendall(b"POST /v1/other HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{")
        status, headers, body = answer(sock)
        assert status == 401 and problem(headers, body)["code"] == "unauthenticated"
        trickle(sock)  # data keeps uvicorn's keep-alive timer off; the drain deadline does not
        assert closed(sock)


def test_connections_over_the_cap_are_503(server: tuple[str, int]) -> None:
    held = [connect(server) for _ in range(SERVER.max_connections)]
    try:
        with connect(server) as sock:
            status, headers, body = answer(sock)
            assert status == 503 and problem(headers, body)["code"] == "overloaded"
            assert headers["retry-after"] == "1"
    finally:
        for sock in held:
            sock.close()
    _until_served(server)  # the server counts the closed connections out when it sees them close


def _until_served(server: tuple[str, int]) -> None:
    """Wait (bounded) until a new connection is served again."""
    deadline = time.monotonic() + 10
    while True:
        with connect(server) as sock:
            sock.sendall(post("/v1/other", 2, b"{}"))
            if answer(sock)[0] == 200:
                return
        assert time.monotonic() < deadline, "connections stayed counted after they closed"
        time.sleep(0.05)


def hold_in_pipeline(server: tuple[str, int], path: str) -> socket.socket:
    """A request admitted and reading its body: 100 Continue is sent when the pipeline reads."""
    sock = connect(server)
    sock.sendall(post(path, 2, extra="Expect: 100-continue\r\n"))
    assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
    return sock


def test_a_route_at_its_cap_answers_503_overloaded(server: tuple[str, int]) -> None:
    with hold_in_pipeline(server, "/v1/one") as first, connect(server) as second:
        second.sendall(post("/v1/one", 2, b"{}"))
        status, headers, body = answer(second)
        document = problem(headers, body)
        assert status == 503 and document["code"] == "overloaded"
        assert "this route" in str(document["detail"]) and headers["retry-after"] == "1"
        first.sendall(b"{}")
        assert answer(first)[0] == 200
    with connect(server) as third:  # the slot is free again
        third.sendall(post("/v1/one", 2, b"{}"))
        assert answer(third)[0] == 200


def test_the_gateway_at_its_cap_answers_503_overloaded(server: tuple[str, int]) -> None:
    with (
        hold_in_pipeline(server, "/v1/other") as first,
        hold_in_pipeline(server, "/v1/one") as second,
        connect(server) as third,
    ):
        third.sendall(post("/v1/other", 2, b"{}"))
        status, headers, body = answer(third)
        document = problem(headers, body)
        assert status == 503 and "the gateway" in str(document["detail"])
        for sock in (first, second):
            sock.sendall(b"{}")
            assert answer(sock)[0] == 200


def test_defaults_are_safe() -> None:
    limits = edge.EdgeLimits.of(ServerSettings())
    assert limits.max_header_size == 16 * 1024 and limits.max_headers == 100
    assert limits.header_timeout == limits.body_timeout == 10
    assert ServerSettings().max_in_flight == 256


def test_settings_reach_uvicorn() -> None:
    options = edge.uvicorn_options(SERVER)
    assert issubclass(options["http"], edge.EdgeProtocol)
    assert options["timeout_keep_alive"] == 0.5
