"""A loopback TCP proxy that can drop every connection on demand: a service 'restart' or outage, for fault tests.

Subclasses may look at the bytes as they pass (`_relay`), e.g. `tests.fakes.pg_proxy.PgCommitDropper`, which lets
PostgreSQL commit a transaction and then drops the connection before the client hears the reply.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `cut()` drops all connections and refuses new ones until `restore()`."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def url_host(self) -> str:
        """host:port to connect to instead of the target."""
        return f"127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drop every open connection and refuse new ones (the service is 'down')."""
        self._up.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()

    def restore(self) -> None:
        """Accept connections again (the service is back)."""
        self._up.set()

    def close(self) -> None:
        """Stop the proxy."""
        self._stop.set()
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                with contextlib.suppress(OSError):
                    client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _new_stream(self) -> object:
        """Per-connection state handed to `_relay` (none here)."""
        return None

    def _relay(self, stream: object, from_client: bool, data: bytes, to: socket.socket) -> bool:
        """Forward bytes read from one side to the other; return False to drop the connection."""
        to.sendall(data)
        return True

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sockets = [a, b]
        stream = self._new_stream()
        try:
            while not self._stop.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.5)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    if not self._relay(stream, s is a, data, b if s is a else a):
                        return
        except (OSError, ValueError):
            return
        finally:
            for s in sockets:
                with contextlib.suppress(OSError):
                    s.close()
            with self._lock:
                if (a, b) in self._pairs:
                    self._pairs.remove((a, b))
