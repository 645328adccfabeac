"""The boards are a projection of the ledger; the projector keeps them in line without anyone running a command.

Each pass: (1) if Redis holds no boards (a restart, a flush, a failover) rebuild them, and finish the catch-up of a
rebuild that stopped right after swapping its boards in; (2) apply every ledger entry
past the generation's high-water mark, and again the last `window` entries below it (a transaction can commit
after a later id was applied; the apply-once script skips what is there already); (3) restate the citizens whose
eligibility, district or name changed (or who were created) past the generation's change mark (and the last
`window` changes below it): their boards and the citizen data a standing reads from Redis.
Nothing waits in memory: the ledger and the citizen_changes table are the queue, so a crash, a restart, a lost
reply or a second worker changes nothing. Every long-running process (web workers, the scheduler) runs one in a
thread: at start, every `interval` seconds, and at once after an after-commit board update fails.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rewards.cases.models import Citizen, CitizenChange
from rewards.clock import Clock
from rewards.db import Database
from rewards.leaderboard import scores
from rewards.leaderboard.boards import Boards, GenerationMoved
from rewards.leaderboard.rebuild import FETCH, RebuildRunning, finish_catch_up, rebuild
from rewards.logs import get_logger
from rewards.scoring.ledger import LedgerEntry, facts_for_entries
from rewards.scoring.rules import is_eligible

log = get_logger("leaderboard.projector")
WINDOW = 1000  # entries (and citizen changes) below the mark applied again each pass: late commits land
# A window whose rows are the ones its last re-apply saw is skipped, but re-applied in full at least this often: the
# skip spares a web worker ~1,000 ORM rows and script calls every pass (a GIL stall that set its p99 latency); the
# full re-apply still repairs, within a minute, writes a Redis failover lost.
FULL_REAPPLY_SECONDS = 60.0


@dataclass(frozen=True)
class ProjectorStatus:
    """What the last pass found: how far the boards trail the ledger, and whether the pass succeeded."""

    passes: int = 0
    ok: bool = True  # the last pass reached Redis and finished
    dirty: bool = False  # an after-commit board update failed since the last successful pass
    ledger_max_id: int = 0
    high_water: int = 0
    lag_rows: int = 0  # ledger entries past the boards' high-water mark at the last pass
    lag_seconds: float = 0.0  # age of the oldest of those entries
    applied: int = 0  # entries and citizen changes (re)applied by the last pass
    rebuilt: bool = False
    last_ok_at: float | None = None  # monotonic time of the last successful pass
    error: str | None = None


class Projector:
    """Catches the Redis boards up with the ledger; safe to run in several processes at once."""

    def __init__(self, db: Database, boards: Boards, clock: Clock, interval: float = 5.0, window: int = WINDOW):
        self.db = db
        self.boards = boards
        self.clock = clock
        self.interval = interval
        self.window = window
        self._status = ProjectorStatus()
        self._status_lock = threading.Lock()
        self._pass_lock = threading.Lock()  # one pass at a time in this process (passes are idempotent anyway)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: dict[str, tuple[tuple[int, ...], float]] = {}  # window -> (its rows' state, monotonic time)
        boards.profiles = self.profiles  # an after-commit ban/unban or district move restates the profile at once

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def status(self) -> ProjectorStatus:
        """The outcome of the last pass (and whether an update failed since)."""
        with self._status_lock:
            return self._status

    def behind(self, bound_rows: int = 0) -> bool:
        """True when the boards may not show every committed entry: an update failed since the last good pass,
        the last pass failed, or it found more than `bound_rows` entries not yet applied."""
        s = self.status
        return s.dirty or not s.ok or s.lag_rows > bound_rows

    def _update(self, **changes: object) -> None:
        with self._status_lock:
            self._status = replace(self._status, **changes)  # type: ignore[arg-type]

    def update_failed(self) -> None:
        """An after-commit board update failed: mark the boards behind and run a pass now."""
        self._update(dirty=True)
        self._wake.set()

    # -- one pass ------------------------------------------------------------------------------------------
    def catch_up(self) -> ProjectorStatus:
        """Run one pass now (rebuild if the boards are gone, then apply what they miss); return its status."""
        with self._pass_lock:
            passes = self.status.passes + 1
            dirty_before = self.status.dirty
            breaker = self.boards.breaker
            if breaker.down:  # Redis failed or hung just before: no pass waits on it (the boards' calls probe it)
                self._update(passes=passes, ok=False, error="Redis unavailable (circuit open)")
                return self.status
            try:
                rebuilt = self._rebuild_if_gone()
                finish_catch_up(self.db, self.boards)  # a rebuild that stopped after its swap: finish its catch-up
                force = dirty_before or not self.status.ok  # a failed update or pass: re-apply in full
                applied, ledger_max, high_water, lag_seconds = self._apply_entries(force)
                applied += self._restate_changes(force)
            except (redis.RedisError, GenerationMoved, RebuildRunning) as exc:
                if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
                    breaker.failure()
                self._update(passes=passes, ok=False, error=f"{type(exc).__name__}: {exc}")
                log.warning("projector pass failed (the boards catch up once Redis answers): %r", exc)
                return self.status
            breaker.success()
            with self._status_lock:
                # an update that failed during this pass keeps the boards marked behind until the next pass
                still_dirty = self._status.dirty and not dirty_before
                self._status = ProjectorStatus(
                    passes=passes,
                    ok=True,
                    dirty=still_dirty,
                    ledger_max_id=ledger_max,
                    high_water=high_water,
                    lag_rows=max(0, ledger_max - high_water),
                    lag_seconds=lag_seconds,
                    applied=applied,
                    rebuilt=rebuilt,
                    last_ok_at=time.monotonic(),
                )
                return self._status

    def _rebuild_if_gone(self) -> bool:
        if self.boards.is_built():
            return False
        log.warning("the leaderboards are missing from Redis: rebuilding them from the ledger")
        self.boards.forget_generation()
        rebuild(self.db, self.boards)
        return True

    def _unchanged(self, window: str, state: tuple[int, ...], force: bool) -> bool:
        """True when a window holds the rows its last re-apply saw, on the same generation, and that re-apply is
        recent. The ledger and the change log are append-only, so the same (start, count, max id) means the same rows:
        every one of them was applied then, and applying them again would change nothing."""
        seen = self._seen.get(window)
        if force or seen is None or seen[0] != state:
            return False
        return time.monotonic() - seen[1] < FULL_REAPPLY_SECONDS

    def _window_state(self, session: Session, column: Any, start: int) -> tuple[int, ...]:
        """(generation, start, count, max id) of a window's rows: two index lookups, no rows loaded."""
        count, last = session.execute(
            select(func.count(), func.coalesce(func.max(column), 0)).where(column > start)
        ).one()
        return (self.boards.generation(), start, int(count), int(last))

    def _apply_entries(self, force: bool = True) -> tuple[int, int, int, float]:
        """Apply entries past the mark (and the window below it); return (applied, ledger max, mark, lag seconds)."""
        mark = self.boards.high_water()
        start, applied = max(0, mark - self.window), 0
        with self.db.read() as session:
            ledger_max = int(session.execute(select(func.coalesce(func.max(LedgerEntry.id), 0))).scalar_one())
            lag_seconds = 0.0
            if ledger_max > mark:
                oldest = session.execute(select(func.min(LedgerEntry.created_at)).where(LedgerEntry.id > mark))
                first: datetime | None = oldest.scalar_one()
                lag_seconds = max(0.0, (self.clock.now() - first).total_seconds()) if first else 0.0
            state = self._window_state(session, LedgerEntry.id, start)
            if self._unchanged("entries", state, force):
                return 0, ledger_max, mark, lag_seconds
            since = time.monotonic()  # taken before the rows are read: a later pass never skips rows this one missed
            while True:
                entries = session.scalars(
                    select(LedgerEntry).where(LedgerEntry.id > start).order_by(LedgerEntry.id).limit(FETCH)
                ).all()
                if not entries:
                    break
                self.boards.apply(facts_for_entries(session, entries))
                applied += len(entries)
                start = entries[-1].id
        self._seen["entries"] = (state, since)
        return applied, ledger_max, max(mark, self.boards.high_water()), lag_seconds

    def _restate_changes(self, force: bool = True) -> int:
        """Restate the citizens changed past the change mark (and the window below it): their boards and what a
        standing shows of them (masked name, banned flag, openid); return how many citizens."""
        mark = self.boards.changes_mark()
        start = max(0, mark - self.window)
        with self.db.read() as session:
            state = self._window_state(session, CitizenChange.id, start)
            if self._unchanged("changes", state, force):
                return 0
            since = time.monotonic()
            rows = session.execute(
                select(CitizenChange.id, CitizenChange.citizen_id)
                .where(CitizenChange.id > start)
                .order_by(CitizenChange.id)
            ).all()
        changed = sorted({cid for _, cid in rows})
        for first in range(0, len(changed), FETCH):
            self.boards.restate_profiles(self.profiles(changed[first : first + FETCH]))
        if rows:
            self.boards.raise_changes_mark(max(row[0] for row in rows))
        self._seen["changes"] = (state, since)
        return len(changed)

    def profiles(self, citizen_ids: Sequence[int]) -> dict[int, scores.Profile]:
        """Return the profile of each committed citizen row among these ids (what Redis keeps for a standing)."""
        with self.db.read() as session:
            rows = session.execute(
                select(Citizen.id, Citizen.openid, Citizen.name, Citizen.phone, Citizen.district, Citizen.verified,
                       Citizen.banned).where(Citizen.id.in_(list(citizen_ids)))
            ).all()  # fmt: skip
        return {
            cid: scores.profile_of(openid, name, phone, district, is_eligible(verified, banned), banned)
            for cid, openid, name, phone, district, verified, banned in rows
        }

    # -- the background thread -----------------------------------------------------------------------------
    def start(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run passes in a daemon thread: now, every `interval` seconds, and at once after a failed update."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, args=(on_error,), name="projector", daemon=True)
        self._thread.start()

    def _loop(self, on_error: Callable[[BaseException], None] | None) -> None:
        while not self._stop.is_set():
            try:
                self.catch_up()
            except Exception as exc:  # a database outage: keep the thread alive, the next pass retries
                self._update(ok=False, error=f"{type(exc).__name__}: {exc}")
                log.warning("projector pass failed: %r", exc)
                if on_error is not None:
                    on_error(exc)
            self._wake.wait(self.interval)
            self._wake.clear()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread (after its current pass)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
