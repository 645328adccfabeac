"""A PostgreSQL-aware loopback proxy that loses the reply to a COMMIT: the database commits, the client never hears.

It reads the client's half of the wire protocol (v3): untyped start-up packets, then typed messages. It remembers
the text of each named statement (Parse), so a transaction's statements are known even when psycopg runs them
prepared, by name (Bind). When armed, the COMMIT (a simple query `Q`, as psycopg sends it) of a transaction that
ran a statement containing the marker is forwarded; the server's reply (CommandComplete, ReadyForQuery: the commit
is durable) is swallowed and both sockets are closed. The client sees its connection drop after the commit took
effect: the outcome it cannot know.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

from tests.fakes.tcp_proxy import TcpProxy

SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST = 80877103, 80877104, 80877102
LEDGER_INSERT = b"INSERT INTO ledger_entries"


@dataclass
class PgStream:
    """What one client connection has said so far."""

    buf: bytearray = field(default_factory=bytearray)
    started: bool = False  # the start-up packet has passed: typed messages follow
    statements: dict[bytes, bytes] = field(default_factory=dict)  # prepared statement name -> text
    touched: bool = False  # the open transaction ran a statement containing the marker
    swallowing: bool = False  # the armed COMMIT went through: drop its reply and the connection


class PgCommitDropper(TcpProxy):
    """A TcpProxy for PostgreSQL whose `drop_next_commit()` loses the reply to one matching COMMIT."""

    def __init__(self, target_host: str, target_port: int, marker: bytes = LEDGER_INSERT) -> None:
        self.marker = marker
        self._armed = 0
        self._count = threading.Condition()
        self.dropped = 0  # COMMITs the server acknowledged and the client never heard of
        super().__init__(target_host, target_port)

    def drop_next_commit(self, count: int = 1) -> None:
        """Lose the reply of the next `count` COMMITs of transactions that ran a statement with the marker."""
        with self._count:
            self._armed += count

    def wait_dropped(self, count: int, timeout: float) -> bool:
        """Wait until `count` COMMIT replies in all were dropped."""
        with self._count:
            return self._count.wait_for(lambda: self.dropped >= count, timeout)

    def _new_stream(self) -> object:
        return PgStream()

    def _relay(self, stream: object, from_client: bool, data: bytes, to: socket.socket) -> bool:
        assert isinstance(stream, PgStream)
        if not from_client:
            if stream.swallowing:  # the server acknowledged the COMMIT: it is durable, and nobody will hear it
                with self._count:
                    self.dropped += 1
                    self._count.notify_all()
                return False
            return super()._relay(stream, from_client, data, to)
        stream.buf += data
        swallow = self._scan(stream)
        super()._relay(stream, from_client, data, to)
        stream.swallowing = stream.swallowing or swallow
        return True

    def _scan(self, stream: PgStream) -> bool:
        """Consume the complete messages in the buffer; return True when one is the armed COMMIT."""
        swallow = False
        buf = stream.buf
        while True:
            if not stream.started:
                if len(buf) < 8:
                    return swallow
                (length,) = struct.unpack("!i", buf[:4])
                if len(buf) < length:
                    return swallow
                (code,) = struct.unpack("!i", buf[4:8])
                stream.started = code not in (SSL_REQUEST, GSSENC_REQUEST, CANCEL_REQUEST)
                del buf[:length]
                continue
            if len(buf) < 5:
                return swallow
            kind = bytes(buf[:1])
            (length,) = struct.unpack("!i", buf[1:5])
            if len(buf) < 1 + length:
                return swallow
            body = bytes(buf[5 : 1 + length])
            del buf[: 1 + length]
            swallow = self._message(stream, kind, body) or swallow

    def _message(self, stream: PgStream, kind: bytes, body: bytes) -> bool:
        if kind == b"Q":
            query = body.rstrip(b"\0").strip().rstrip(b";").upper()
            if query == b"COMMIT":
                touched, stream.touched = stream.touched, False
                return touched and self._take_arm()
            if query in (b"BEGIN", b"ROLLBACK"):
                stream.touched = False
            elif self.marker in body:
                stream.touched = True
        elif kind == b"P":  # Parse: name \0 query \0 ...
            name, _, rest = body.partition(b"\0")
            query = rest.partition(b"\0")[0]
            stream.statements[name] = query
            stream.touched = stream.touched or self.marker in query
        elif kind == b"B":  # Bind: portal \0 statement \0 ...
            statement = body.partition(b"\0")[2].partition(b"\0")[0]
            stream.touched = stream.touched or self.marker in stream.statements.get(statement, b"")
        return False

    def _take_arm(self) -> bool:
        with self._count:
            if self._armed <= 0:
                return False
            self._armed -= 1
            return True
