"""`rewards serve` turns Nagle off on every connection, also when uvicorn hands its workers a listening socket made
with proto 0 (`--workers N`, uvicorn issue #3149), where asyncio itself leaves TCP_NODELAY unset."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

from rewards.cli.server import HeaderTimeoutH11Protocol

Scope = MutableMapping[str, Any]


async def ok_app(scope: Scope, receive: Callable[[], Awaitable[Any]], send: Callable[[Any], Awaitable[None]]) -> None:
    """A bare ASGI app answering 200 to every request."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def nodelay_of_served_connection(http_protocol: Any) -> int:
    """Serve one keep-alive connection the way the multiprocess supervisor does (a pre-bound socket from
    Config.bind_socket()) and return TCP_NODELAY of the server's side of it."""
    config = uvicorn.Config(ok_app, host="127.0.0.1", port=0, http=http_protocol, log_level="warning", lifespan="off")
    listener = config.bind_socket()
    assert listener.proto == 0  # what uvicorn --workers N passes down (the case asyncio does not cover)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30  # a hang guard only
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        client = http.client.HTTPConnection("127.0.0.1", listener.getsockname()[1], timeout=10)
        client.request("GET", "/")
        assert client.getresponse().read() == b"ok"
        (served,) = list(server.server_state.connections)  # the connection is still open (keep-alive)
        value = served.transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        client.close()
        return int(value)
    finally:
        server.should_exit = True
        thread.join(30)
        listener.close()


def test_the_serving_protocol_sets_tcp_nodelay_on_a_pre_bound_listener() -> None:
    assert nodelay_of_served_connection(HeaderTimeoutH11Protocol) != 0


def test_uvicorns_own_protocol_leaves_nagle_on_there() -> None:
    """The reason for the above (uvicorn #3149): if uvicorn fixes it, this fails and the workaround may go."""
    assert nodelay_of_served_connection("h11") == 0
