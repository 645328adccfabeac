"""Limits before work: a body cap per route, enforced while the body streams in, before any JSON or form parsing.

Every request gets the cap of the first rule in BODY_RULES that matches its method and path (DEFAULT_RULE
otherwise). A declared Content-Length above the cap is refused at once with 413, before a byte of the body is
read; a body without one (chunked) is counted as it arrives and refused with 413 the moment it passes the cap,
whatever the application was doing with it (the application's own answer is replaced). Nothing beyond the cap
is ever held: uvicorn itself buffers at most 64 KiB of a body the application has not asked for.

Staff routes (writes under /api/v1/ and /console) are refused with 401 *before* their body is read unless the
request carries a configured bearer token or a console session: FastAPI reads a JSON or form body before it
runs a route's dependencies, so without this a stranger's 50 MB body would be read whole only to be told 401.
The role itself is still checked by the route (`rewards.http.auth.require`). The other authenticated edges
check their credentials before reading the body themselves: the intake webhook its signature headers, the
WeChat callback the signature in its query, Open311 POST a query api_key (or the form's api_key first).

A refusal that leaves a body unread answers with `Connection: close`, so the server stops reading it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rewards.errors import DomainError, Unauthorized
from rewards.http.auth import Principal, TokenTable, bearer_token

KIB = 1024
MIB = 1024 * KIB
JSON_API_MAX_BYTES = 64 * KIB  # command-center and publication API bodies (a case with 9 photo URLs is ~3 KiB)
CONSOLE_FORM_MAX_BYTES = 64 * KIB  # console forms: a verdict, a void or a ban with its reason
INTAKE_MAX_BYTES = 5 * MIB  # the intake webhook: batches of signed events
WECHAT_MAX_BYTES = 64 * KIB  # WeChat messages are a few KiB
OPEN311_MAX_BYTES = 64 * KIB  # the largest legal form (4,000 Chinese characters, percent-encoded) is ~45 KiB
SIGN_IN_MAX_BYTES = 16 * KIB  # console sign-in (a token), sign-out (no body)
DEFAULT_MAX_BYTES = 64 * KIB  # anything else; GETs carry no body
OBJECTION_MAX_BYTES = 32 * KIB  # an objection: week, rank and a reason (its length is checked by the service)
RATING_MAX_BYTES = 8 * KIB  # a citizen's rating: a level and a comment of at most 200 characters
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANY_METHOD = frozenset({"*"})


class PayloadTooLarge(DomainError):
    """The request body is larger than the route accepts."""

    status = 413
    code = "payload_too_large"


@dataclass(frozen=True)
class BodyRule:
    """Requests with one of `methods` ("*": any) whose path matches `path` carry at most `max_bytes` of body.

    `staff`: the request must carry a configured bearer token or a console session before its body is read.
    """

    path: re.Pattern[str]
    max_bytes: int
    staff: bool = False
    methods: frozenset[str] = WRITE_METHODS

    def matches(self, method: str, path: str) -> bool:
        """Does this rule govern a request?"""
        return ("*" in self.methods or method in self.methods) and self.path.match(path) is not None


# The one table of body caps, first match wins.
BODY_RULES: tuple[BodyRule, ...] = (
    BodyRule(re.compile(r"^/intake/v1/events$"), INTAKE_MAX_BYTES),
    BodyRule(re.compile(r"^/wechat/callback$"), WECHAT_MAX_BYTES),
    BodyRule(re.compile(r"^/open311/v2/requests\.[A-Za-z]+$"), OPEN311_MAX_BYTES),
    BodyRule(re.compile(r"^/auth/"), SIGN_IN_MAX_BYTES),
    # the mini program's sign-in (rewards/api/auth.py): a wx.login code, posted before anyone has a credential
    BodyRule(re.compile(r"^/api/v1/auth/wxa$"), SIGN_IN_MAX_BYTES),
    # a citizen rates their own report with their session (rewards/api/ratings.py checks who): not staff-only
    BodyRule(re.compile(r"^/api/v1/citizens/[^/]+/reports/[^/]+/rating$"), RATING_MAX_BYTES),
    # a citizen objects to an entry of a week's list with their session (rewards/api/review.py checks who)
    BodyRule(re.compile(r"^/api/v1/citizens/[^/]+/objections$"), OBJECTION_MAX_BYTES),
    BodyRule(re.compile(r"^/api/v1/"), JSON_API_MAX_BYTES, staff=True),
    BodyRule(re.compile(r"^/console(/|$)"), CONSOLE_FORM_MAX_BYTES, staff=True),
)
DEFAULT_RULE = BodyRule(re.compile(""), DEFAULT_MAX_BYTES, methods=ANY_METHOD)


def rule_for(method: str, path: str, rules: tuple[BodyRule, ...] = BODY_RULES) -> BodyRule:
    """Return the rule governing a request: the first that matches, else DEFAULT_RULE."""
    return next((rule for rule in rules if rule.matches(method, path)), DEFAULT_RULE)


def too_large(max_bytes: int) -> PayloadTooLarge:
    """The 413 of a route whose cap is `max_bytes`."""
    return PayloadTooLarge(f"the request body may be at most {max_bytes} bytes on this route")


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length a request declared (the HTTP parser has already refused a malformed one), or None."""
    for name, value in headers:
        if name.lower() == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


def announces_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """Does the request say a body follows (a positive Content-Length, or chunked transfer)?"""
    for name, value in headers:
        key = name.lower()
        if key == b"transfer-encoding" and value.strip():
            return True
        if key == b"content-length" and value.strip() not in (b"", b"0"):
            return True
    return False


def staff_refusal(token: str | None, tokens: TokenTable, session: Principal | None) -> Unauthorized | None:
    """Why a staff request may not have its body read (None: it carries a known credential).

    The same answers as `require()`: a wrong bearer token is refused even beside a valid console session.
    """
    if token is not None:
        return None if tokens.principal(token) is not None else Unauthorized("invalid token")
    if session is None:
        return Unauthorized("missing bearer token")
    return None


def error_response(exc: DomainError) -> tuple[int, bytes]:
    """The status and JSON body every error of the service uses: {"error": code, "detail": reason}."""
    return exc.status, json.dumps({"error": exc.code, "detail": exc.message}).encode()


class BodyTooLarge(Exception):
    """Raised by the counting receive() once a body passes its cap; the middleware answers 413."""


class BodyLimits:
    """ASGI middleware: caps every request body (BODY_RULES) and checks staff credentials before the body."""

    def __init__(self, app: ASGIApp, tokens: TokenTable, rules: tuple[BodyRule, ...] = BODY_RULES) -> None:
        self.app = app
        self.tokens = tokens
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse before reading, or run the app with a receive() that counts the body."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = rule_for(scope["method"], scope["path"], self.rules)
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers", []))
        refusal = self._before_reading(scope, rule, headers)
        if refusal is not None:
            await respond(send, refusal, close=announces_body(headers))
            return
        await self._run_counted(scope, receive, send, rule.max_bytes)

    def _before_reading(self, scope: Scope, rule: BodyRule, headers: list[tuple[bytes, bytes]]) -> DomainError | None:
        declared = declared_length(headers)
        if declared is not None and declared > rule.max_bytes:
            return too_large(rule.max_bytes)
        if rule.staff:
            session = scope.get("state", {}).get("console_principal")  # set by the session middleware
            principal = session if isinstance(session, Principal) else None
            return staff_refusal(bearer_token(Request(scope)), self.tokens, principal)
        return None

    async def _run_counted(self, scope: Scope, receive: Receive, send: Send, max_bytes: int) -> None:
        received = 0
        over = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, over
            if over:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    over = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a body it could not read is replaced by the 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not over:
                raise
            # BodyTooLarge, or whatever the app made of it: the answer is the 413 below
        if over and not started:
            await respond(send, too_large(max_bytes), close=True)


async def respond(send: Send, exc: DomainError, *, close: bool) -> None:
    """Send the JSON error of `exc`; `close`: tell the server to drop the connection (an unread body follows)."""
    status, body = error_response(exc)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exc.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
