"""The HTTP protocol `rewards serve` runs (rewards.cli.server.HeadLimitsProtocol: uvicorn's httptools protocol with
request-head limits), on a real uvicorn server in a thread and real sockets.

Nagle is off on every connection, also when uvicorn hands its workers a listening socket made with proto 0
(`--workers N`, uvicorn issue #3149), where asyncio itself leaves TCP_NODELAY unset. A request head past the size
limit is refused and one that never completes is dropped, while bodies (however large), pipelined requests and
keep-alive connections are unaffected: only head bytes count, and the clock runs only while a head is owed.
The whole `rewards serve` is checked against the same limits in tests/e2e/test_limits.py.
"""

from __future__ import annotations

import asyncio
import http.client
import select
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from rewards.cli import server as serving
from rewards.cli.server import HeadLimitsProtocol

Scope = MutableMapping[str, Any]
HEAD_TIMEOUT_S = 0.5
MAX_HEAD = 4096
WAIT_S = 30.0  # a hang guard only: no test asserts a time


async def length_app(
    scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]
) -> None:
    """A bare ASGI app answering each request with the length of the body it read."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(3 * HEAD_TIMEOUT_S)  # longer than the head timeout: no head is owed meanwhile
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]}
    )
    await send({"type": "http.response.body", "body": body})


@contextmanager
def served(http_protocol: Any, loop: str = "uvloop") -> Iterator[tuple[uvicorn.Server, int]]:
    """uvicorn on a pre-bound socket, as the multiprocess supervisor serves (Config.bind_socket(), proto 0), on the
    event loop `rewards serve` runs unless told."""
    config = uvicorn.Config(
        length_app, host="127.0.0.1", port=0, http=http_protocol, loop=loop, log_level="warning", lifespan="off"
    )
    listener = config.bind_socket()
    assert listener.proto == 0  # what uvicorn --workers N passes down (the case asyncio does not cover)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield server, listener.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(WAIT_S)
        listener.close()


@pytest.fixture
def limited(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The protocol of `rewards serve` with small head limits; yields the port."""
    monkeypatch.setattr(serving, "head_limits", lambda: (HEAD_TIMEOUT_S, MAX_HEAD))
    with served(HeadLimitsProtocol) as (_, port):
        yield port


def nodelay_of_served_connection(http_protocol: Any, loop: str = "uvloop") -> int:
    """Serve one keep-alive connection and return TCP_NODELAY of the server's side of it."""
    with served(http_protocol, loop) as (server, port):
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        client.request("GET", "/")
        assert client.getresponse().read() == b"0"
        (connection,) = list(server.server_state.connections)  # the connection is still open (keep-alive)
        value = connection.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        client.close()
        return int(value)


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_the_serving_protocol_sets_tcp_nodelay_on_a_pre_bound_listener(loop: str) -> None:
    assert nodelay_of_served_connection(HeadLimitsProtocol, loop) != 0


def test_uvicorns_own_protocol_leaves_nagle_on_there_on_asyncio() -> None:
    """The reason for the above (uvicorn #3149; uvloop sets TCP_NODELAY itself, asyncio's loop does not): if uvicorn
    fixes it, this fails and the workaround may go."""
    assert nodelay_of_served_connection("httptools", "asyncio") == 0


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or the hang guard runs out)."""
    received, deadline = b"", time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if select.select([sock], [], [], 0.1)[0]:
            try:
                got = sock.recv(65536)
            except ConnectionResetError:
                return received
            if not got:
                return received
            received += got
    raise AssertionError(f"the server never closed the connection; it sent {received[:200]!r}")


def answers(sock: socket.socket, count: int) -> list[bytes]:
    """Read `count` responses (each a 200 with a small Content-Length body) and return their bodies."""
    buffer, bodies, deadline = b"", [], time.monotonic() + WAIT_S
    while len(bodies) < count:
        assert time.monotonic() < deadline, f"got {len(bodies)} of {count} answers: {buffer[:200]!r}"
        if select.select([sock], [], [], 0.1)[0]:
            got = sock.recv(65536)
            assert got, f"closed after {len(bodies)} of {count} answers"
            buffer += got
        while b"\r\n\r\n" in buffer:
            head, rest = buffer.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(
                next(
                    v for k, v in (h.split(b": ", 1) for h in head.split(b"\r\n")[1:]) if k.lower() == b"content-length"
                )
            )
            if len(rest) < length:
                break
            bodies.append(rest[:length])
            buffer = rest[length:]
    return bodies


def post(body: bytes, extra: bytes = b"") -> bytes:
    return b"POST /x HTTP/1.1\r\nHost: x\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_a_head_past_the_limit_is_refused_and_one_under_it_served(limited: int) -> None:
    with socket.create_connection(("127.0.0.1", limited), timeout=WAIT_S) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * (2 * MAX_HEAD))  # never finished
        assert read_until_closed(sock).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", limited), timeout=WAIT_S) as sock:  # in pieces, also refused
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        for n in range(3 * MAX_HEAD // 100):
            try:
                sock.sendall(b"X-H%d: " % n + b"b" * 90 + b"\r\n")
            except OSError:
                break  # the server has answered and closed
        assert read_until_closed(sock).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", limited), timeout=WAIT_S) as sock:
        headers = b"".join(b"X-H%d: %s\r\n" % (n, b"c" * 50) for n in range(MAX_HEAD // 100))  # ~2.4 KiB
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        assert answers(sock, 1) == [b"0"]


def test_bodies_of_any_size_and_pipelined_requests_do_not_count_as_head(limited: int) -> None:
    big = b"z" * (64 * MAX_HEAD)  # 256 KiB: 64 times the head limit
    with socket.create_connection(("127.0.0.1", limited), timeout=WAIT_S) as sock:
        sock.sendall(post(big))  # head and body in one write
        assert answers(sock, 1) == [str(len(big)).encode()]
        sock.sendall(post(big)[:100])  # then a head in two pieces, the body after it in slices
        time.sleep(0.05)
        rest = post(big)[100:]
        for start in range(0, len(rest), 10_000):
            sock.sendall(rest[start : start + 10_000])
        assert answers(sock, 1) == [str(len(big)).encode()]
        # three pipelined requests in one write: a body, the next head right behind it
        sock.sendall(post(b"a" * 3000) + post(big) + post(b""))
        assert answers(sock, 3) == [b"3000", str(len(big)).encode(), b"0"]
        # a request answered slowly, alone and pipelined after a quick one: the clock waits for its answer
        slow = b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
        sock.sendall(slow)
        assert answers(sock, 1) == [b"2"]
        sock.sendall(post(b"") + slow)
        assert answers(sock, 2) == [b"0", b"2"]


def test_the_head_clock_runs_only_while_a_head_is_owed(limited: int) -> None:
    with socket.create_connection(("127.0.0.1", limited), timeout=WAIT_S) as sock:
        assert read_until_closed(sock) == b""  # connected and said nothing: dropped, nothing answered
    with socket.create_connection(("127.0.0.1", limited), timeout=WAIT_S) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        try:
            for _ in range(int(WAIT_S / 0.05)):
                sock.sendall(b"a")  # bytes keep coming, the head never ends: the clock is not reset
                time.sleep(0.05)
        except OSError:
            pass  # closed by the server
        assert read_until_closed(sock) == b""
    with socket.create_connection(("127.0.0.1", limited), timeout=WAIT_S) as sock:
        # a body sent slowly, over several head timeouts, is not cut off: no head is owed while it arrives
        body = b"q" * 40
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n")
        for n in range(0, 40, 10):
            time.sleep(HEAD_TIMEOUT_S * 0.6)
            sock.sendall(body[n : n + 10])
        assert answers(sock, 1) == [b"40"]
        # after the answer a head is owed again: the idle keep-alive connection is closed (before uvicorn's 5 s)
        assert read_until_closed(sock) == b""


class RecordedWrites:
    """Stands between the socket transport and the protocol: what reaches the socket, one entry per write."""

    writes: ClassVar[list[bytes]] = []

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        RecordedWrites.writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RecordedServingProtocol(HeadLimitsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(RecordedWrites(transport))  # type: ignore[arg-type]


class RecordedUvicornProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(RecordedWrites(transport))  # type: ignore[arg-type]


def socket_writes_per_response(http_protocol: Any) -> list[list[bytes]]:
    """Three keep-alive requests one after the other; the writes that reached the socket for each response."""
    per_response: list[list[bytes]] = []
    with served(http_protocol) as (_, port), socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as sock:
        for body in (b"", b"abc", b"x" * 5000):
            RecordedWrites.writes = []
            sock.sendall(post(body))
            assert answers(sock, 1) == [str(len(body)).encode()]
            per_response.append(RecordedWrites.writes)
    return per_response


def test_each_response_reaches_the_socket_in_one_write(limited: int) -> None:
    for writes in socket_writes_per_response(RecordedServingProtocol):
        assert len(writes) == 1, writes
        assert writes[0].startswith(b"HTTP/1.1 200") and b"\r\n\r\n" in writes[0]


def test_uvicorns_own_protocol_writes_head_and_body_apart() -> None:
    """The reason for CoalescedWrites: if uvicorn joins them itself, this fails and the wrapper may go."""
    for writes in socket_writes_per_response(RecordedUvicornProtocol):
        assert len(writes) == 2 and writes[0].endswith(b"\r\n\r\n"), writes
