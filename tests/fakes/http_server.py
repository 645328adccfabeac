"""A stand-in HTTP server for tests: the stdlib's ThreadingHTTPServer on a free loopback port, in a daemon thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def start_server(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """Serve `handler` on 127.0.0.1 (a free port: `server.server_address[1]`) until `shutdown()`."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True  # a request thread never keeps the test process alive
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """`start_server` for a `with` block: yields the port, shuts the server down and closes it after."""
    server = start_server(handler)
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
