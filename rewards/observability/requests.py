"""The request middleware: a request id for every request, and its latency counted by route template.

The id is the caller's X-Request-ID when it is sane (1-128 letters, digits and `._:=/+-`, starting with a letter
or digit: a reverse proxy's or a client's), else a fresh one; it goes back in the X-Request-ID response header and
is bound for the logs (rewards.logs.RequestIdFilter) while the request runs. It is the outermost middleware, so
every answer (body-limit refusals, security headers, error handlers) passes through it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextlib import suppress

from starlette.datastructures import Headers, MutableHeaders
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rewards.logs import bind_request_id, new_request_id, sane_request_id, unbind_request_id
from rewards.observability.metrics import Metrics

REQUEST_ID_HEADER = "X-Request-ID"
UNMATCHED = "unmatched"  # the route label of a request no route matched (never its path)


def route_template(scope: Scope, original: Scope, routes: Sequence[BaseRoute]) -> str:
    """The path template of the route that served a request; else UNMATCHED (never the path itself).

    FastAPI's routes leave themselves in the scope; a plain Starlette route or a mount (the API description, the
    static files) is found again by matching the request as it came in against the application's own routes.
    """
    route = scope.get("route")
    if isinstance(route, Route | WebSocketRoute):
        return route.path
    for candidate in routes:
        if isinstance(candidate, Mount | Route | WebSocketRoute) and candidate.matches(original)[0] != Match.NONE:
            return candidate.path + "/{path}" if isinstance(candidate, Mount) else candidate.path
    return UNMATCHED


class RequestContext:
    """ASGI middleware: request id (header and logs), request count and latency by route template."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, routes: Sequence[BaseRoute], after_request: Callable[[], None]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes  # the application's own list (routes added later are in it too)
        self.after_request = after_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request with its id bound; count it once it is answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        original = dict(scope)  # the routing below writes into the scope
        request_id = sane_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER)) or new_request_id()
        token = bind_request_id(request_id)
        started = time.perf_counter()
        status = 500
        answered = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                answered, status = True, int(message["status"])
                message["headers"] = list(message.get("headers", []))
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette's last-resort handler would answer outside this middleware, without the id: answer here,
            # then let the error go on to the server, which logs it (still in this request's context: the id stays
            # bound on this path, and each request runs in its own task, so it goes no further)
            if not answered:
                with suppress(Exception):  # the client may be gone: the error to report is the first one
                    for message in _internal_error(request_id):
                        await send_with_id(message)
            raise
        finally:
            route = route_template(scope, original, self.routes)
            self.metrics.observe_request(scope["method"], route, status, time.perf_counter() - started)
            self.after_request()
        unbind_request_id(token)


def _internal_error(request_id: str) -> list[Message]:
    """A JSON 500 naming the request id (the messages that send it)."""
    detail = f"an unexpected error occurred (request id {request_id})"
    body = json.dumps({"error": "internal_error", "detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return [
        {"type": "http.response.start", "status": 500, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]
