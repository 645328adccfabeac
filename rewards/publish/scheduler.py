"""`rewards scheduler`: one APScheduler process closing last week after Monday 00:00 and publishing it.

Jobs run in the program's time zone with coalesce, a misfire grace and one instance at a time; each run also
takes a Redis lock, so a second scheduler, or a job firing twice, does nothing: the work is idempotent and
never runs concurrently. Web workers never start this (only the CLI command does).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import TypeVar

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from rewards.config import Settings
from rewards.db import Database
from rewards.errors import ConfigError, Conflict
from rewards.leaderboard.weeks import ClosedWeek, WeekCloser
from rewards.locks import Leases
from rewards.logs import get_logger
from rewards.publish.models import UNFINISHED, Publication
from rewards.publish.service import PublishService

log = get_logger("scheduler")
T = TypeVar("T")


class WeeklyJobs:
    """The scheduler's jobs: close last week, publish it, resume unfinished publications; each under a lease."""

    def __init__(
        self, db: Database, settings: Settings, closer: WeekCloser, publishing: PublishService, leases: Leases
    ) -> None:
        self.db = db
        self.settings = settings
        self.closer = closer
        self.publishing = publishing
        self.leases = leases

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
            weeks = session.scalars(select(Publication.week).where(Publication.state.in_(UNFINISHED))).all()
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


def _cron(setting: str, expression: str, tz: tzinfo) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(expression, timezone=tz)
    except ValueError as exc:
        raise ConfigError(f"REWARDS_{setting.upper()} is not a crontab expression ({expression!r}): {exc}") from exc


def build_scheduler(jobs: WeeklyJobs, scheduler: BaseScheduler | None = None) -> BaseScheduler:
    """Add the weekly jobs to a scheduler (a BlockingScheduler by default) in the program's time zone."""
    s = jobs.settings
    sched = scheduler or BlockingScheduler(timezone=s.tz)
    entries: list[tuple[str, Callable[[], object], BaseTrigger]] = [
        ("close-week", jobs.run_close, _cron("close_cron", s.close_cron, s.tz)),
        ("publish-week", jobs.run_publish, _cron("publish_cron", s.publish_cron, s.tz)),
        ("resume-publications", jobs.run_resume, IntervalTrigger(minutes=s.publish_resume_minutes, timezone=s.tz)),
    ]
    for job_id, func, trigger in entries:
        sched.add_job(
            func,
            trigger,
            id=job_id,
            replace_existing=True,
            coalesce=True,  # several missed fire times run once
            misfire_grace_time=s.scheduler_misfire_grace_seconds,
            max_instances=1,
        )
    return sched


def run_scheduler(jobs: WeeklyJobs) -> None:
    """Run the scheduler in the foreground until interrupted."""
    sched = build_scheduler(jobs)
    for job in sched.get_jobs():
        log.info("scheduled %s: %s", job.id, job.trigger)
    try:
        sched.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
