"""rewards.cli.server.CoalescedWrites: the writes of one turn of the event loop reach the socket as one write, in
order, and nothing is lost or sent after the connection closes (a real event loop, a recording transport)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards.cli.server import COALESCE_BYTES, CoalescedWrites


class SocketTransport(asyncio.Transport):
    """What the socket would have been sent: one entry per write, and whether it was closed or aborted."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.eof = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def write_eof(self) -> None:
        self.eof = True

    def get_write_buffer_size(self) -> int:
        return 7  # as if 7 bytes were still in the kernel's way


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def next_turn(loop: asyncio.AbstractEventLoop) -> None:
    """Run one turn of the loop, in a thread of its own: the suite's thread may hold a running loop of another test's
    (a loop cannot run where one is running)."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(loop.run_until_complete, asyncio.sleep(0)).result()


turns = st.lists(st.lists(st.binary(max_size=40), max_size=5), max_size=8)


@given(turns=turns)
def test_each_turns_writes_reach_the_socket_as_one_write_in_order(turns: list[list[bytes]]) -> None:
    loop = asyncio.new_event_loop()
    try:
        socket = SocketTransport()
        joined = CoalescedWrites(socket, loop)
        for chunks in turns:
            for chunk in chunks:
                joined.write(chunk)
            assert joined.get_write_buffer_size() == 7 + sum(map(len, chunks))
            next_turn(loop)
            assert joined.get_write_buffer_size() == 7  # nothing waits past the turn
        assert socket.writes == [b"".join(chunks) for chunks in turns if b"".join(chunks)]
    finally:
        loop.close()


def test_past_the_limit_what_waits_is_sent_at_once(loop: asyncio.AbstractEventLoop) -> None:
    """A body streamed without a pause reaches the socket (and its flow control) in pieces of about the limit."""
    socket = SocketTransport()
    joined = CoalescedWrites(socket, loop)
    piece = b"p" * (COALESCE_BYTES // 3 + 1)
    for _ in range(7):
        joined.write(piece)
        assert joined.get_write_buffer_size() - 7 < COALESCE_BYTES
    assert socket.writes == [piece * 3, piece * 3]  # the 3rd and the 6th write passed the limit
    next_turn(loop)
    assert socket.writes == [piece * 3, piece * 3, piece]


def test_close_sends_what_waits_first(loop: asyncio.AbstractEventLoop) -> None:
    socket = SocketTransport()
    joined = CoalescedWrites(socket, loop)
    joined.writelines([b"HTTP/1.1 400 Bad Request\r\n\r\n", b"too large"])
    joined.close()
    assert socket.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\ntoo large"] and socket.closed
    joined.write(b"late")  # a write after close is dropped, as the socket transport drops it
    next_turn(loop)
    assert socket.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\ntoo large"] and joined.is_closing()


def test_write_eof_sends_what_waits_first(loop: asyncio.AbstractEventLoop) -> None:
    socket = SocketTransport()
    joined = CoalescedWrites(socket, loop)
    joined.write(b"last")
    joined.write_eof()
    assert socket.writes == [b"last"] and socket.eof


def test_abort_drops_what_waits(loop: asyncio.AbstractEventLoop) -> None:
    socket = SocketTransport()
    joined = CoalescedWrites(socket, loop)
    joined.write(b"never sent")
    joined.abort()
    next_turn(loop)
    assert socket.writes == [] and socket.aborted


def test_a_connection_closed_by_the_peer_meanwhile_is_not_written(loop: asyncio.AbstractEventLoop) -> None:
    socket = SocketTransport()
    joined = CoalescedWrites(socket, loop)
    joined.write(b"answer")
    socket.closed = True  # the client left before the loop's next turn
    next_turn(loop)
    assert socket.writes == []
