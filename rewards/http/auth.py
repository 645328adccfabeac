"""Bearer-token authentication for the console and API, with roles from Settings."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import Request

from rewards.errors import Forbidden, Unauthorized

ROLE_GRANTS: dict[str, frozenset[str]] = {
    "admin": frozenset({"admin", "validator", "intake", "publisher"}),
    "validator": frozenset({"validator"}),
    "intake": frozenset({"intake"}),
    "publisher": frozenset({"publisher"}),
}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    name: str
    role: str

    def may(self, role: str) -> bool:
        """Return True when this caller's role grants `role`."""
        return role in ROLE_GRANTS.get(self.role, frozenset())


class TokenTable:
    """The configured bearer tokens and the principal each one authenticates."""

    def __init__(self, tokens: Mapping[str, Principal]) -> None:
        self._tokens = dict(tokens)

    def principal(self, token: str) -> Principal | None:
        """Find the token (compared in constant time against every configured one) and return its principal."""
        found: Principal | None = None
        for candidate, principal in self._tokens.items():
            if hmac.compare_digest(candidate.encode(), token.encode()):
                found = principal
        return found


def bearer_token(request: Request) -> str | None:
    """Return the bearer token of a request, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def require(role: str) -> Callable[[Request], Principal]:
    """FastAPI dependency: the caller must hold a token (or console session) granting `role`."""

    def dependency(request: Request) -> Principal:
        tokens: TokenTable = request.app.state.http.tokens
        token = bearer_token(request)
        principal = tokens.principal(token) if token else None
        if token and principal is None:  # an explicit wrong credential is refused, even beside a valid session
            raise Unauthorized("invalid token")
        if principal is None:
            session_principal = getattr(request.state, "console_principal", None)
            principal = session_principal if isinstance(session_principal, Principal) else None
        if principal is None:
            raise Unauthorized("missing bearer token")
        if not principal.may(role):
            raise Forbidden(f"role {principal.role!r} may not do this (needs {role!r})")
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


def require_citizen_or(role: str) -> Callable[[Request, str], str]:
    """FastAPI dependency for /citizens/{openid}/…: the citizen's own session, or a token granting `role`."""
    staff = require(role)

    def dependency(request: Request, openid: str) -> str:
        own = getattr(request.state, "citizen_openid", None)
        if isinstance(own, str) and hmac.compare_digest(own.encode(), openid.encode()):
            return openid
        if own is not None and bearer_token(request) is None:
            raise Forbidden("a citizen may only see their own data")
        staff(request)
        return openid

    dependency.__name__ = f"require_citizen_or_{role}"
    return dependency
