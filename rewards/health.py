"""Shared knowledge that a backing service just failed, so callers skip it for a moment instead of each waiting.

The rate limiter marks Redis down when a call fails; the leaderboard reads then answer from the ledger at once
instead of paying a connect timeout per request (WeChat wants its reply within 5 seconds).
"""

from __future__ import annotations

import time


class ServiceHealth:
    """Whether a service failed within the last few seconds (monotonic clock; thread-safe enough: one float)."""

    def __init__(self, name: str, hold_seconds: float = 5.0) -> None:
        self.name = name
        self.hold_seconds = hold_seconds
        self._down_until = 0.0

    @property
    def down(self) -> bool:
        """True for `hold_seconds` after the last failure."""
        return time.monotonic() < self._down_until

    def failed(self) -> None:
        """Record a failure: callers skip the service for `hold_seconds`."""
        self._down_until = time.monotonic() + self.hold_seconds
