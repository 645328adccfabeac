"""uvicorn as `rewards serve` runs it: its limits from Settings, and a header-read timeout uvicorn lacks.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but a connection that never sends a
whole request head (a half-open or slowloris client) is kept for ever, one file descriptor each. The protocol
below closes a connection that has not sent its request line and headers within
Settings.server_header_timeout_seconds of connecting or of its previous response; data trickling in does not
reset the clock (unlike the keep-alive timer). docs/deployment.md has the figures and the reverse proxy in front.
"""

from __future__ import annotations

import asyncio
import resource
import socket
from functools import cache
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from rewards.config import Settings, load_settings
from rewards.logs import get_logger

log = get_logger("server")
FD_HEADROOM = 64  # file descriptors kept for the database, Redis, logs and the listening socket


@cache
def header_timeout_seconds() -> float:
    """The header-read timeout of this process (each uvicorn worker reads it from its environment once)."""
    return load_settings().server_header_timeout_seconds


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing connections that take too long to send a request head."""

    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Turn Nagle off, then start the clock for the first request head."""
        no_delay(transport)
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        """Feed uvicorn; stop the clock once a whole request head has arrived (more data does not reset it)."""
        super().data_received(data)
        self._follow_state()

    def on_response_complete(self) -> None:
        """After a response, the next request head must arrive in time too (unless it already has)."""
        super().on_response_complete()
        self._follow_state()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the clock."""
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _follow_state(self) -> None:
        """The clock runs exactly while the client owes us a request head (h11: their state is IDLE)."""
        if self.conn.their_state is not h11.IDLE:
            self._cancel_header_timer()
        elif self._header_timer is None and not self.transport.is_closing():
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(header_timeout_seconds(), self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()  # nothing was asked, so nothing is answered (nginx does the same, 408 aside)


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
        "http": HeaderTimeoutH11Protocol,
        "limit_concurrency": concurrency,
        "timeout_keep_alive": settings.server_timeout_keep_alive_seconds,
        "h11_max_incomplete_event_size": settings.server_max_header_bytes,
        "backlog": settings.server_backlog,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.server_forwarded_allow_ips,
        "server_header": False,
    }
