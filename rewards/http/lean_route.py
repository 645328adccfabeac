"""`LeanRoute`: a FastAPI route of the simplest shape, served without FastAPI's general request solver.

FastAPI's handler for a route is general: it reads the body (parsing its content type with `email.message`), then
solves the dependency tree (overrides, caches, generators, scopes, a `Response` for dependencies to set headers on,
background tasks) and every kind of parameter, then runs the endpoint. Profiled under the verdict load, that
machinery was the biggest single piece of the event loop's time per request, most of it for things a hot route
does not use.

A `LeanRoute` is still an `APIRoute`: FastAPI builds its dependant, its body field and its OpenAPI operation from the
endpoint's signature as for any route, and the middleware, routing and exception handlers around it are the same.
Only the handler differs, and only when the route has this shape (checked when the route is built; any other shape
gets FastAPI's own handler):
- an `async def` endpoint returning a `Response` (no response model to validate or serialize);
- path parameters and at most one JSON body parameter (not embedded, not a form); no query, header or cookie
  parameters, no background tasks, `Response` or security-scope parameters;
- dependencies that are `async def` functions of the request alone (or of nothing), with none of their own: reads
  of the container and in-memory credential checks.

The lean handler keeps FastAPI's semantics by reusing its parts where an answer can differ: a body that is not
`application/json`, is empty or is not JSON goes to FastAPI's own handler before anything else ran (FastAPI reads
the body before the dependencies), and the parameters and the body are validated by FastAPI's own
`request_params_to_args` / `request_body_to_args`, so errors are the same 422 with the same details. The
dependencies run in declaration order, each call once per request (FastAPI's cache), before the parameters are
validated, as FastAPI runs them. With any dependency override set (tests), every request takes FastAPI's handler.
`tests/unit/test_lean_route.py` checks that both handlers answer any request alike.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi._body_limit import get_body_limit_error
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_body_to_args, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.routing import APIRoute, _effective_route_context_var
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

JSON = "application/json"  # the one content type the lean handler parses itself; any other goes to FastAPI's
Handler = Callable[[Request], Coroutine[Any, Any, Response]]
RequestDependency = tuple[str, Callable[..., Awaitable[Any]], bool]  # (parameter, call, takes the request)


class LeanRoute(APIRoute):
    """An APIRoute served by a lean handler when its shape allows it (see the module's doc)."""

    def get_route_handler(self) -> Handler:
        general = self.general_handler()
        context = _effective_route_context_var.get()  # as APIRoute does: an included route's effective dependant
        route = context if context is not None and context.original_route is self else self
        plan = lean_plan(route.dependant, route.body_field, getattr(route, "_embed_body_fields", False))
        if plan is None:
            return general
        return plan.handler(general, route.dependency_overrides_provider)

    def general_handler(self) -> Handler:
        """FastAPI's own handler of this route: served where the lean one could answer differently."""
        return super().get_route_handler()


class LeanPlan:
    """What the lean handler of one route does, decided once when the route is built."""

    def __init__(self, dependant: Dependant, dependencies: list[RequestDependency], body: bool) -> None:
        assert dependant.call is not None
        self.endpoint = dependant.call
        self.path_params = dependant.path_params
        self.body_params = dependant.body_params
        self.request_param = dependant.request_param_name
        self.dependencies = dependencies
        self.body = body

    def handler(self, general: Handler, overrides_provider: Any) -> Handler:
        """The request handler: the lean path, or `general` (FastAPI's) where the two could differ."""
        endpoint, dependencies = self.endpoint, self.dependencies
        path_params, body_params, request_param, wants_body = (
            self.path_params,
            self.body_params,
            self.request_param,
            self.body,
        )

        async def app(request: Request) -> Response:
            if overrides_provider is not None and getattr(overrides_provider, "dependency_overrides", None):
                return await general(request)
            body: Any = None
            if wants_body:
                if request.headers.get("content-type") != JSON:
                    return await general(request)
                try:
                    raw = await request.body()  # kept by the request: FastAPI's handler reads the same bytes
                except Exception as exc:  # a body over a cap, a client gone
                    raise unreadable_body(request, exc) from exc
                if not raw:
                    return await general(request)
                try:
                    body = json.loads(raw)
                except ValueError:  # not JSON, or not UTF-8: FastAPI's own error
                    return await general(request)
            values: dict[str, Any] = {}
            solved: dict[Callable[..., Any], Any] = {}
            for name, call, takes_request in dependencies:
                if call not in solved:
                    solved[call] = await (call(request) if takes_request else call())
                values[name] = solved[call]
            path_values, errors = request_params_to_args(path_params, request.path_params)
            values.update(path_values)
            if wants_body:
                body_values, body_errors = await request_body_to_args(body_params, body, embed_body_fields=False)
                values.update(body_values)
                errors.extend(body_errors)
            if errors:
                raise RequestValidationError(errors, body=body)
            if request_param is not None:
                values[request_param] = request
            response: Response = await endpoint(**values)
            return response

        return app


def unreadable_body(request: Request, exc: Exception) -> Exception:
    """What FastAPI's handler raises when reading the body failed (Starlette's HTTPException, as FastAPI's handler
    uses): an HTTPException as it is, FastAPI's own body limit as its 413, anything else as 400."""
    if isinstance(exc, HTTPException):
        return exc
    if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (limit := get_body_limit_error(exc)) is not None:
        return limit
    return HTTPException(status_code=400, detail="There was an error parsing the body")


def lean_plan(dependant: Dependant, body_field: Any, embed_body_fields: bool) -> LeanPlan | None:
    """The lean handler's plan for a route, or None when the route's shape needs FastAPI's general handler."""
    call = dependant.call
    if call is None or not inspect.iscoroutinefunction(call) or not _returns_response(call):
        return None
    if dependant.query_params or dependant.header_params or dependant.cookie_params:
        return None
    if _special_params(dependant) or dependant.websocket_param_name or dependant.http_connection_param_name:
        return None
    if len(dependant.body_params) > 1 or embed_body_fields:
        return None
    if body_field is not None and isinstance(body_field.field_info, Form):
        return None
    dependencies: list[RequestDependency] = []
    for sub in dependant.dependencies:
        found = _request_dependency(sub)
        if found is None:
            return None
        dependencies.append(found)
    return LeanPlan(dependant, dependencies, body=bool(dependant.body_params))


def _request_dependency(sub: Dependant) -> RequestDependency | None:
    """(parameter, call, takes the request) of an `async def` dependency of the request alone, else None."""
    call = sub.call
    if sub.name is None or call is None or not inspect.iscoroutinefunction(call):
        return None
    if sub.dependencies or sub.path_params or sub.query_params or sub.header_params or sub.cookie_params:
        return None
    if sub.body_params or _special_params(sub) or sub.websocket_param_name or sub.http_connection_param_name:
        return None
    if sub.own_oauth_scopes or sub.parent_oauth_scopes or sub.concurrency is not None:
        return None
    return sub.name, call, sub.request_param_name is not None


def _special_params(dependant: Dependant) -> bool:
    """Whether the function takes a parameter FastAPI fills with an object of its own making."""
    return bool(
        dependant.background_tasks_param_name or dependant.response_param_name or dependant.security_scopes_param_name
    )


def _returns_response(call: Callable[..., Any]) -> bool:
    """Whether the endpoint is annotated to return a Response (FastAPI sends it as it is)."""
    try:
        returned = typing.get_type_hints(call).get("return")
    except (NameError, TypeError):
        return False
    return isinstance(returned, type) and issubclass(returned, Response)
