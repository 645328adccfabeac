"""Signed session cookies: a citizen's openid, or a validator's console session; the middleware that reads them.

Cookies are signed (itsdangerous, Settings.session_secret), http-only, SameSite (Lax for citizens, who arrive by
top-level navigation from WeChat; Strict for the console) and Secure when public_base_url is https. They are
stateless: sign-out clears them in the browser, rotating session_secret ends every session. A console session
stores a keyed fingerprint of the bearer token it was opened with, so removing the token from
REWARDS_API_TOKENS ends its sessions too. Cookie values are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from rewards.config import Settings
from rewards.http.auth import Principal
from rewards.logs import get_logger

log = get_logger("session")

CITIZEN_COOKIE = "rw_session"
CONSOLE_COOKIE = "rw_console"
CONSOLE_ROLES = frozenset({"validator", "admin"})  # machines (intake, publisher) keep using bearer tokens
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class CitizenSession:
    """A signed-in citizen; `dev` marks a development sign-in."""

    openid: str
    dev: bool = False


@dataclass(frozen=True)
class ConsoleSession:
    """A validator's or admin's console session."""

    name: str
    role: str
    fingerprint: str


def secure_cookies(settings: Settings) -> bool:
    """Cookies carry the Secure flag when the service is published over https."""
    return settings.public_base_url.lower().startswith("https://")


def token_fingerprint(secret: str, token: str) -> str:
    """Return a keyed fingerprint of a bearer token (the token itself never goes into a cookie)."""
    return hmac.new(secret.encode(), b"console-token:" + token.encode(), hashlib.sha256).hexdigest()[:32]


class SessionCodec:
    """Signs and reads the session cookies of one Settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secret = settings.session_secret.get_secret_value()
        self._citizen = URLSafeTimedSerializer(self.secret, salt="rewards.session.citizen")
        self._console = URLSafeTimedSerializer(self.secret, salt="rewards.session.console")
        # fingerprint -> (name, role) of every token that may open a console session
        self._tokens = {
            token_fingerprint(self.secret, token): (t.name, t.role)
            for token, t in settings.api_tokens.items()
            if t.role in CONSOLE_ROLES
        }

    def dump_citizen(self, session: CitizenSession) -> str:
        """Return the signed cookie value of a citizen session."""
        return str(self._citizen.dumps({"o": session.openid, "d": int(session.dev)}))

    def load_citizen(self, value: str) -> CitizenSession | None:
        """Return the citizen session of a cookie value, or None when forged, expired or malformed."""
        data = self._load(self._citizen, value, self.settings.session_max_age_seconds)
        openid = data.get("o") if data else None
        if not isinstance(openid, str) or not openid:
            return None
        return CitizenSession(openid, bool(data.get("d")) if data else False)

    def dump_console(self, session: ConsoleSession) -> str:
        """Return the signed cookie value of a console session."""
        return str(self._console.dumps({"n": session.name, "r": session.role, "f": session.fingerprint}))

    def load_console(self, value: str) -> Principal | None:
        """Return the principal of a console cookie whose token is still configured with the same role, or None."""
        data = self._load(self._console, value, self.settings.console_session_max_age_seconds)
        if not data:
            return None
        fingerprint = data.get("f")
        current = self._tokens.get(fingerprint) if isinstance(fingerprint, str) else None
        if current is None or current != (data.get("n"), data.get("r")):
            return None
        return Principal(*current)

    def console_session_for(self, token: str) -> ConsoleSession | None:
        """Return the console session a bearer token may open, or None (unknown token or a machine role)."""
        fingerprint = token_fingerprint(self.secret, token)
        found = None
        for candidate, (name, role) in self._tokens.items():  # constant-time comparisons, no early exit
            if hmac.compare_digest(candidate, fingerprint):
                found = ConsoleSession(name, role, candidate)
        return found

    @staticmethod
    def _load(serializer: URLSafeTimedSerializer, value: str, max_age: int) -> dict[str, Any] | None:
        if len(value) > 4096:
            return None
        try:
            data = serializer.loads(value, max_age=max_age)
        except (BadSignature, ValueError, TypeError):  # SignatureExpired is a BadSignature
            return None
        return data if isinstance(data, dict) else None


def codec_of(request: HTTPConnection) -> SessionCodec:
    """Return the application's session codec (built once by bootstrap())."""
    codec: SessionCodec = request.app.state.http.codec
    return codec


def set_citizen_cookie(response: Response, codec: SessionCodec, session: CitizenSession) -> None:
    """Attach the citizen's session cookie to a response."""
    response.set_cookie(
        CITIZEN_COOKIE,
        codec.dump_citizen(session),
        max_age=codec.settings.session_max_age_seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(codec.settings),
    )


def set_console_cookie(response: Response, codec: SessionCodec, session: ConsoleSession) -> None:
    """Attach a console session cookie to a response."""
    response.set_cookie(
        CONSOLE_COOKIE,
        codec.dump_console(session),
        max_age=codec.settings.console_session_max_age_seconds,
        path="/",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(codec.settings),
    )


def clear_cookies(response: Response, settings: Settings) -> None:
    """Remove both session cookies (sign-out)."""
    for name, samesite in ((CITIZEN_COOKIE, "lax"), (CONSOLE_COOKIE, "strict")):
        response.delete_cookie(name, path="/", httponly=True, samesite=samesite, secure=secure_cookies(settings))  # type: ignore[arg-type]


def origin_of(url: str) -> str:
    """Return scheme://host[:port] of a URL, lower-case."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(conn: HTTPConnection, settings: Settings) -> bool:
    """A request without Origin (not a browser's cross-origin call) or from our own origin may use cookies."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True
    own = {origin_of(settings.public_base_url), origin_of(str(conn.base_url))}
    return origin.lower().rstrip("/") in own


class SessionMiddleware:
    """Sets request.state.citizen_openid / citizen_dev / console_principal from the signed cookies.

    A state-changing request (not GET/HEAD/OPTIONS) whose Origin is foreign is treated as signed out:
    SameSite already keeps the cookies off cross-site requests, this also covers sibling subdomains.
    """

    def __init__(self, app: ASGIApp, codec: SessionCodec) -> None:
        self.app = app
        self.codec = codec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the cookies, then run the app."""
        if scope["type"] in ("http", "websocket"):
            state = scope.setdefault("state", {})
            state["citizen_openid"] = None
            state["citizen_dev"] = False
            conn = HTTPConnection(scope)
            codec = self.codec
            if conn.cookies and (scope.get("method") in SAFE_METHODS or same_origin(conn, codec.settings)):
                self._read(conn, codec, state)
        await self.app(scope, receive, send)

    @staticmethod
    def _read(conn: HTTPConnection, codec: SessionCodec, state: dict[str, Any]) -> None:
        citizen_value = conn.cookies.get(CITIZEN_COOKIE)
        citizen = codec.load_citizen(citizen_value) if citizen_value else None
        if citizen is not None:
            state["citizen_openid"] = citizen.openid
            state["citizen_dev"] = citizen.dev
        console_value = conn.cookies.get(CONSOLE_COOKIE)
        principal = codec.load_console(console_value) if console_value else None
        if principal is not None:
            state["console_principal"] = principal
