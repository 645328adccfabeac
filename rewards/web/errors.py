"""Browsers get pages, API clients JSON: the one place that decides, by the Accept header, and renders the page.

`install(app)` wraps the application's error handlers (registered in rewards/app.py): a request that accepts
text/html (a browser navigating) gets an HTML page with the same status and the reason in Chinese; every other
caller gets the JSON answer of the wrapped handler, unchanged. Two errors have a better page than a generic one:
a 401 in the console is its sign-in form with the message, and WeChat sign-in that is not configured is the
sign-in page explaining it (with the development sign-in when that is on).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from rewards.deps import container
from rewards.errors import BadRequest, DomainError, TooManyRequests
from rewards.web import messages
from rewards.web.oauth import safe_next
from rewards.web.templating import page

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]
CONSOLE_PATHS = ("/console", "/auth/console")
SIGN_IN_CODES = frozenset({"oauth_unconfigured", "wechat_unconfigured", "wechat_unavailable", "bad_code", "bad_state"})


@dataclass(frozen=True)
class Failure:
    """An error as a page shows it: status, code, the reason in Chinese, extra headers, bad fields."""

    status: int
    code: str
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    fields: tuple[str, ...] = ()


def wants_html(request: Request) -> bool:
    """True for a browser navigating (it asks for text/html); API clients and scripts get JSON."""
    return "text/html" in request.headers.get("accept", "").lower()


def failure_of(exc: Exception) -> Failure | None:
    """Describe an error for a page; None when it is no error a page should show (a redirect)."""
    if isinstance(exc, DomainError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else {}
        return Failure(exc.status, exc.code, messages.reason_of(exc), headers)
    if isinstance(exc, RequestValidationError):
        names = tuple(str(e["loc"][-1]) for e in exc.errors() if e.get("loc"))
        return Failure(422, "invalid_request", messages.reason("invalid_request", 422), fields=names)
    if isinstance(exc, DataError):
        return Failure(422, "invalid_value", messages.reason("invalid_value", 422))
    if isinstance(exc, OperationalError):
        return Failure(503, "unavailable", messages.reason("unavailable", 503))
    if isinstance(exc, StarletteHTTPException) and exc.status_code >= 400:
        code = "not_found" if exc.status_code == 404 else ""
        return Failure(exc.status_code, code, messages.reason(code, exc.status_code), dict(exc.headers or {}))
    return None


def error_page(request: Request, failure: Failure) -> Response:
    """The page for a failure: the console's sign-in form, the citizen sign-in page, or the error page."""
    path = request.url.path
    if failure.status == 401 and path.startswith(CONSOLE_PATHS):
        message = "访问令牌不正确，或该令牌不能使用审核台。" if path.startswith("/auth/") else failure.reason
        return page("console/login.html", status_code=401, error=message)
    if failure.code in SIGN_IN_CODES:
        settings = container(request).settings
        dev = settings.dev_login and settings.environment == "development"
        return page(
            "signin.html",
            status_code=failure.status,
            nav="me",
            next_path=_next_path(request),
            dev=dev,
            notice=failure.reason,
            wechat_ready=bool(settings.wechat_app_id),
        )
    console = path.startswith(CONSOLE_PATHS)
    response = page(
        "error.html",
        status_code=failure.status,
        heading=messages.title(failure.status),
        reason=failure.reason,
        fields=failure.fields,
        status=failure.status,
        back_url="/console" if console else "/me",
        back_label="返回审核台" if console else "返回我的",
    )
    response.headers.update(failure.headers)
    return response


def _next_path(request: Request) -> str:
    try:
        return safe_next(request.query_params.get("next"))
    except BadRequest:
        return "/me"


def browser_aware(original: Handler) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Wrap an error handler: a page for a browser, the original (JSON) answer for everyone else."""

    async def handler(request: Request, exc: Exception) -> Response:
        failure = failure_of(exc) if wants_html(request) else None
        if failure is not None:
            return error_page(request, failure)
        answer = original(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    return handler


def install(app: FastAPI) -> None:
    """Make every registered error handler answer browsers with a page (call after registering them)."""
    for kind in (DomainError, RequestValidationError, DataError, OperationalError, StarletteHTTPException):
        original = app.exception_handlers.get(kind)
        if original is not None:
            app.exception_handlers[kind] = browser_aware(original)
