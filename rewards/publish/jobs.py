"""The scheduler's jobs: close last week, publish it, resume unfinished publications; each under a lease.

A `finalize` callable (rewards.review's ReviewService.run_due, wired by rewards.bootstrap: publish sits below
review and never imports it) is the fourth job: make due weeks final (定榜) and resume their announcements.

Kept apart from the APScheduler wiring (rewards.publish.scheduler) so building the container never imports
APScheduler: web workers hold the jobs but never start a scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import select

from rewards.config import Settings
from rewards.db import Database
from rewards.errors import Conflict
from rewards.leaderboard.weeks import ClosedWeek, WeekCloser
from rewards.locks import Leases
from rewards.logs import get_logger
from rewards.publish.models import UNFINISHED, Publication
from rewards.publish.port import NOTICE
from rewards.publish.service import PublishService

log = get_logger("scheduler")
T = TypeVar("T")


class WeeklyJobs:
    """The scheduler's jobs: close last week, publish it, resume unfinished publications; each under a lease."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        closer: WeekCloser,
        publishing: PublishService,
        leases: Leases,
        finalize: Callable[[], object] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.closer = closer
        self.publishing = publishing
        self.leases = leases
        self.finalize = finalize

    def locked(self, name: str, work: Callable[[], T]) -> T | None:
        """Run work under the job's lease; None (and nothing done) when another run holds it."""
        key = f"{self.settings.leaderboard_key_prefix}:scheduler:{name}"
        lease = self.leases.lease(key, self.settings.publish_lock_seconds)
        if not lease.acquire():
            log.info("job %s is already running elsewhere; this run does nothing", name)
            return None
        try:
            return work()
        finally:
            lease.release()

    def run_close(self) -> ClosedWeek | None:
        """Job: close the week that just ended (a second run returns the stored snapshot)."""
        week = self.closer.default_week()
        return self.locked(f"close:{week}", lambda: self.closer.close(week))

    def run_publish(self) -> Publication | None:
        """Job: make sure last week is closed, then publish it once (published or failed records are left alone)."""
        week = self.closer.default_week()

        def work() -> Publication | None:
            self.closer.close(week)
            try:
                return self.publishing.publish(str(week))
            except Conflict as exc:
                log.warning("publishing %s skipped: %s", week, exc.message)
                return None

        return self.locked(f"publish:{week}", work)

    def run_resume(self) -> list[Publication]:
        """Job: resume publications a crash, a slow WeChat or a console retry left unfinished (never failed ones)."""
        with self.db.read() as session:
            weeks = session.scalars(
                select(Publication.week).where(Publication.state.in_(UNFINISHED), Publication.kind == NOTICE)
            ).all()
        done = []
        for week in weeks:

            def work(week: str = week) -> Publication | None:
                try:
                    return self.publishing.publish(week)
                except Conflict as exc:
                    log.warning("resuming %s skipped: %s", week, exc.message)
                    return None

            result = self.locked(f"publish:{week}", work)
            if result is not None:
                done.append(result)
        return done

    def run_finalize(self) -> object | None:
        """Job: make weeks whose objection window ended final and resume their 定榜 announcements (None: not wired,
        or another run holds the job's lease)."""
        if self.finalize is None:
            return None
        return self.locked("finalize", self.finalize)
