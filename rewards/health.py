"""A circuit breaker per backing service, shared by every caller in the process (pure: time is passed in).

Closed: calls go through; `failures_to_open` failures in a row open it. Open: callers skip the service at once
(reads fall back to the ledger, the rate limiter fails open, after-commit board updates are left to the
projector) for `open_seconds`; then one caller at a time may probe it (half-open): a success closes the breaker,
a failure opens it again. No lock is held across a network call: the state changes in a few instructions.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_CODES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}  # for the metrics gauge


@dataclass(frozen=True)
class BreakerSnapshot:
    """The breaker as /readyz and /metrics report it."""

    name: str
    state: str
    failures: int
    opened: int  # how many times it opened since the process started


class CircuitBreaker:
    """Open after consecutive failures, half-open probes after a pause, closed again after a success."""

    def __init__(
        self,
        name: str,
        failures_to_open: int = 3,
        open_seconds: float = 5.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failures_to_open = failures_to_open
        self.open_seconds = open_seconds
        self._now = now
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False
        self._opened = 0

    def allow(self) -> bool:
        """May a caller use the service now? (Half-open: one probe at a time, the others skip it.)"""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN and self._now() - self._opened_at >= self.open_seconds:
                self._state = HALF_OPEN
            if self._state == HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def success(self) -> None:
        """A call went through: close the breaker.

        Already closed with no failure counted (nearly every call): nothing to change, so the lock is not taken; a
        failure racing this call is counted either way, as if it came just after."""
        if self._state == CLOSED and not self._failures and not self._probing:
            return
        with self._lock:
            self._state, self._failures, self._probing = CLOSED, 0, False

    def failure(self) -> None:
        """A call failed or timed out: count it; open the breaker at the threshold (or on a failed probe)."""
        with self._lock:
            self._failures += 1
            if self._state == HALF_OPEN or self._failures >= self.failures_to_open:
                if self._state != OPEN:
                    self._opened += 1
                self._state, self._opened_at, self._probing = OPEN, self._now(), False

    @property
    def down(self) -> bool:
        """True while callers should not use the service (open, or half-open with a probe under way)."""
        with self._lock:
            if self._state == CLOSED:
                return False
            return not (self._state == OPEN and self._now() - self._opened_at >= self.open_seconds)

    def snapshot(self) -> BreakerSnapshot:
        """The current state, for readiness and metrics."""
        with self._lock:
            return BreakerSnapshot(self.name, self._state, self._failures, self._opened)
