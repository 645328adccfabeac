"""What the HTTP machinery (auth, rate limits, sessions) reads from the application: built once by bootstrap()."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from rewards.clock import Clock
from rewards.config import Settings
from rewards.http.auth import TokenTable
from rewards.http.ratelimit import RateLimiter
from rewards.http.session import SessionCodec


@dataclass(frozen=True)
class HttpState:
    """The settings, clock, API tokens, rate limiter and session codec of one application."""

    settings: Settings
    clock: Clock
    tokens: TokenTable
    limiter: RateLimiter
    codec: SessionCodec


def http_state(request: Request) -> HttpState:
    """FastAPI dependency: the application's HTTP state."""
    state: HttpState = request.app.state.http
    return state
