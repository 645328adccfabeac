"""uvicorn as `rewards serve` runs it: httptools on uvloop, its limits from Settings, and the head limits uvicorn lacks.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but a connection that never sends a
whole request head (a half-open or slowloris client) is kept for ever, one file descriptor each. The protocol
below closes a connection that has not sent its request line and headers within
Settings.server_header_timeout_seconds of connecting or of its previous response; data trickling in does not
reset the clock (unlike the keep-alive timer). docs/deployment.md has the figures and the reverse proxy in front.

uvicorn writes a response's status line and headers, then its body, each with its own `transport.write`: two
`send()` system calls and, with Nagle off, two TCP segments for every response. The protocol joins the writes made in
one turn of the event loop into one (`CoalescedWrites`).
"""

from __future__ import annotations

import asyncio
import resource
import socket
from collections.abc import Iterable
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from rewards.config import Settings, load_settings
from rewards.logs import get_logger

log = get_logger("server")
FD_HEADROOM = 64  # file descriptors kept for the database, Redis, logs and the listening socket
# Bytes a connection's writes may keep waiting within one turn of the loop: past this they go to the socket at once
# (a body streamed without a pause then meets the socket transport's flow control, not a list in memory)
COALESCE_BYTES = 64 * 1024


@cache
def head_limits() -> tuple[float, int]:
    """This process's request-head limits: (seconds to send one, bytes it may take). Each uvicorn worker reads them
    from its environment once."""
    settings = load_settings()
    return settings.server_header_timeout_seconds, settings.server_max_header_bytes


class HeadLimitsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol (llhttp, a C parser, where h11 parses in Python), with the limits on a request
    head that uvicorn leaves to h11 or lacks: a connection that has not sent a whole head within the timeout is
    closed, and a head larger than Settings.server_max_header_bytes is answered 400 (its buffer stays bounded).

    The clock runs while the client owes us a head: from connecting, and from each response on (unless the next
    head is already in); data trickling in does not reset it. Bytes are counted from where a head is awaited (a
    chunk holding the end of the previous body and the start of a head counts from the next chunk: bounded by one
    read, as uvicorn's own buffering is)."""

    _header_timer: asyncio.TimerHandle | None = None
    _awaiting_head = True  # the next bytes belong to a request head not yet complete
    _head_bytes = 0  # bytes received toward that head

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Turn Nagle off, then start the clock for the first request head."""
        no_delay(transport)
        super().connection_made(transport)
        # after uvicorn's own set-up: its flow control pauses and resumes reading on the socket's transport itself
        self.transport = CoalescedWrites(transport, self.loop)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        """Count a head's bytes, feed uvicorn, refuse a head past the size limit."""
        if self._awaiting_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._awaiting_head and self._head_bytes > head_limits()[1] and not self.transport.is_closing():
            self._cancel_header_timer()
            self.send_400_response("Request head too large.")

    def on_headers_complete(self) -> None:
        """A whole head arrived: stop the clock and the count."""
        self._awaiting_head = False
        self._head_bytes = 0
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request is in: what follows is the next head (its clock starts once this request is answered)."""
        super().on_message_complete()
        self._awaiting_head = True
        if self._head_owed():  # answered before its body ended (413, 401)
            self._arm_header_timer()

    def on_response_complete(self) -> None:
        """After a response, the next request head must arrive in time too (unless it already has: a pipelined
        request, now started, is answered before the clock runs again)."""
        super().on_response_complete()
        if self._head_owed() and not self.transport.is_closing():
            self._arm_header_timer()

    def _head_owed(self) -> bool:
        """The client owes us a head: every request received is answered and the next head is not complete.
        (`cycle` is the latest request's, also while an earlier pipelined one is still being answered.)"""
        return self._awaiting_head and (self.cycle is None or self.cycle.response_complete)

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(head_limits()[0], self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._head_owed() and not self.transport.is_closing():
            self.transport.close()  # nothing was asked, so nothing is answered (nginx does the same, 408 aside)


class CoalescedWrites(asyncio.Transport):
    """A transport whose writes within one turn of the event loop reach the socket as one write.

    uvicorn sends a response as two writes (head, then body) in the same turn; each would be its own `send()` system
    call (on loopback the kernel also runs the receiving side's TCP in it) and, with Nagle off, its own segment.
    Written here, they wait in a list until the loop's next turn (`call_soon`) and go to the socket joined: one
    system call and one segment per response, in the order they were written. Nothing waits longer than that turn,
    nor past `limit` bytes (then it is sent at once); `close` and `write_eof` send what is waiting first, `abort`
    drops it (as the socket's own buffer is dropped). Everything else is the socket transport's own (flow control
    included: it sees the joined writes)."""

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, limit: int = COALESCE_BYTES
    ) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._limit = limit
        self._waiting: list[bytes] = []
        self._size = 0  # bytes waiting

    # -- writes ---------------------------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Keep the bytes until the loop's next turn (the first write of a turn schedules the flush), or send what
        waits at once when it reaches the limit."""
        if not data:
            return
        if not self._waiting:
            self._loop.call_soon(self.flush)
        self._waiting.append(bytes(data))
        self._size += len(data)
        if self._size >= self._limit:
            self.flush()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        """Keep each chunk (see `write`)."""
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is waiting, joined, in one write (nothing once the connection is closing)."""
        if not self._waiting:
            return
        data = self._waiting[0] if len(self._waiting) == 1 else b"".join(self._waiting)
        self._waiting.clear()
        self._size = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def get_write_buffer_size(self) -> int:
        """Bytes not yet sent: the socket transport's buffer and what waits here."""
        return self._transport.get_write_buffer_size() + self._size

    def close(self) -> None:
        """Send what is waiting, then close (the socket transport sends its buffer before closing)."""
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        """Send what is waiting, then half-close."""
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        """Close at once; what is waiting is dropped with the socket transport's own buffer."""
        self._waiting.clear()
        self._size = 0
        self._transport.abort()

    # -- the socket transport's own -------------------------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()


def no_delay(transport: asyncio.BaseTransport) -> None:
    """Set TCP_NODELAY on a TCP connection. asyncio sets it only when the listening socket was made with
    proto=IPPROTO_TCP, and `uvicorn --workers N` binds it with proto 0 (uvicorn issue #3149): Nagle then holds the
    response body until the client's delayed ACK of the head, about 40 ms on every keep-alive request."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def raise_file_limit() -> int:
    """Raise this process's soft open-files limit to the hard one (workers inherit it); return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65_536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:  # e.g. above fs.nr_open: keep the old limit
            log.warning("could not raise the open-files limit: %s", exc)
    return soft


def uvicorn_options(settings: Settings, file_limit: int) -> dict[str, Any]:
    """uvicorn's keyword arguments for the limits in Settings (concurrency kept under the open-files limit)."""
    concurrency = min(settings.server_limit_concurrency, max(1, file_limit - FD_HEADROOM))
    return {
        "http": HeadLimitsProtocol,
        "loop": "uvloop",
        "limit_concurrency": concurrency,
        "timeout_keep_alive": settings.server_timeout_keep_alive_seconds,
        "backlog": settings.server_backlog,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.server_forwarded_allow_ips,
        "server_header": False,
    }
