"""Readiness: may this process take traffic? The database and Redis answer, and the boards follow the ledger.

Liveness (/healthz) asks only whether the process answers; readiness (/readyz) asks whether it can serve well:
- database: `SELECT 1` answers within the deadline;
- Redis: PING answers within the deadline, through the shared circuit breaker (while it is open the check
  reports it at once, without touching Redis; when it lets a probe through, this check is that probe);
- projector: its last pass succeeded, recently, and found the boards within the lag bounds.
Each backing check runs in a `Probe`: a hung service holds the answer for at most the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from sqlalchemy import text

from rewards.config import Settings
from rewards.db import Database
from rewards.health import CircuitBreaker
from rewards.leaderboard.projector import Projector, ProjectorStatus
from rewards.observability.probe import Outcome, Probe

Fact = str | int | float | bool | None


@dataclass(frozen=True)
class Check:
    """One readiness check: whether it passed, what it saw, and why not."""

    name: str
    ok: bool
    facts: dict[str, Fact] = field(default_factory=dict)
    reason: str | None = None

    def body(self) -> dict[str, Fact]:
        """The JSON form."""
        return {"ok": self.ok, **self.facts, **({"reason": self.reason} if self.reason else {})}


@dataclass(frozen=True)
class Report:
    """Every check; ready when all passed."""

    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        """True when every check passed."""
        return all(c.ok for c in self.checks)

    @property
    def status_code(self) -> int:
        """200 when ready, else 503."""
        return 200 if self.ready else 503

    def body(self) -> dict[str, object]:
        """The JSON answer: the verdict, the names of the failing checks, each check's facts."""
        return {
            "status": "ready" if self.ready else "not_ready",
            "not_ready": [c.name for c in self.checks if not c.ok],
            "checks": {c.name: c.body() for c in self.checks},
        }


@dataclass(frozen=True)
class LagBounds:
    """How far behind the boards may be while the process counts as ready."""

    max_lag_rows: int
    max_lag_seconds: float

    @classmethod
    def of(cls, settings: Settings) -> LagBounds:
        """The bounds from REWARDS_READY_MAX_LAG_ROWS and REWARDS_READY_MAX_LAG_SECONDS."""
        return cls(settings.ready_max_lag_rows, settings.ready_max_lag_seconds)


def judge_projector(status: ProjectorStatus, now: float, bounds: LagBounds) -> Check:
    """Is the projector keeping the boards in line? (`now` on the clock of `status.last_ok_at`: time.monotonic.)"""
    since = None if status.last_ok_at is None else round(max(0.0, now - status.last_ok_at), 3)
    facts: dict[str, Fact] = {
        "passes": status.passes,
        "last_pass_ok": status.ok,
        "lag_rows": status.lag_rows,
        "lag_seconds": round(status.lag_seconds, 3),
        "seconds_since_success": since,
        "dirty": status.dirty,
    }
    reason = None
    if since is None:
        reason = "no projector pass has succeeded yet"
    elif not status.ok:
        reason = "the projector's last pass failed"
    elif since > bounds.max_lag_seconds:
        reason = f"no projector pass has succeeded for {since:.0f} s (bound {bounds.max_lag_seconds:g} s)"
    elif status.lag_rows > bounds.max_lag_rows:
        reason = f"the boards trail the ledger by {status.lag_rows} entries (bound {bounds.max_lag_rows})"
    elif status.lag_seconds > bounds.max_lag_seconds:
        reason = f"the boards trail the ledger by {status.lag_seconds:.0f} s (bound {bounds.max_lag_seconds:g} s)"
    return Check("projector", reason is None, facts, reason)


def judge_answer(name: str, outcome: Outcome[None], **facts: Fact) -> Check:
    """A backing service's check from its probe's outcome."""
    seconds = round(outcome.seconds, 3)
    if outcome.ok:
        return Check(name, True, {**facts, "seconds": seconds})
    return Check(name, False, {**facts, "seconds": seconds}, f"{name} did not answer: {outcome.error}")


class Readiness:
    """The /readyz checks of one process."""

    def __init__(
        self,
        db: Database,
        client: redis.Redis,
        breaker: CircuitBreaker,
        projector: Projector,
        settings: Settings,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.breaker = breaker
        self.projector = projector
        self.bounds = LagBounds.of(settings)
        self.timeout = settings.ready_timeout_seconds
        self._now = now
        self._db = db
        self._redis = client
        self._db_probe: Probe[None] = Probe("database", self._select_one)
        self._redis_probe: Probe[None] = Probe("redis", self._ping)

    def check(self) -> Report:
        """Run every check; the backing services in parallel, each waited for at most the deadline."""
        deadline = time.monotonic() + self.timeout
        db_flight = self._db_probe.begin()
        redis_check = self._redis_check(deadline)
        database = judge_answer("database", Probe.wait(db_flight, deadline))
        projector = judge_projector(self.projector.status, self._now(), self.bounds)
        return Report((database, redis_check, projector))

    def _redis_check(self, deadline: float) -> Check:
        state = self.breaker.snapshot().state
        if self.breaker.down:
            return Check("redis", False, {"breaker": state}, "the Redis circuit breaker is open: Redis failed or hung")
        flight = self._redis_probe.begin()
        return judge_answer("redis", Probe.wait(flight, deadline), breaker=state)

    def _select_one(self) -> None:
        with self._db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def _ping(self) -> None:
        # this check is one of the breaker's callers: its outcome counts, and it may be the half-open probe
        if not self.breaker.allow():
            raise BreakerBusy("another caller is probing Redis")
        try:
            self._redis.ping()
        except Exception:
            self.breaker.failure()
            raise
        self.breaker.success()


class BreakerBusy(RuntimeError):
    """The breaker is half-open and another caller holds its one probe."""
