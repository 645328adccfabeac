"""`rewards scheduler`: one APScheduler process closing last week after Monday 00:00 and publishing it.

Jobs run in the program's time zone with coalesce, a misfire grace and one instance at a time; each run also
takes a Redis lock, so a second scheduler, or a job firing twice, does nothing: the work is idempotent and
never runs concurrently. Web workers never start this (only the CLI command does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, TypeVar

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from rewards.errors import ConfigError, Conflict
from rewards.leaderboard.snapshot import ClosedWeek, close_week, default_week
from rewards.logs import get_logger
from rewards.publish.lock import RedisLock
from rewards.publish.models import UNFINISHED, Publication
from rewards.publish.service import PublishService

if TYPE_CHECKING:
    from rewards.bootstrap import Container

log = get_logger("scheduler")
T = TypeVar("T")


def job_lock(container: Container, name: str) -> RedisLock:
    """The lock one run of a job holds (named per job and week)."""
    key = f"{container.settings.leaderboard_key_prefix}:scheduler:{name}"
    return RedisLock(container.redis, key, container.settings.publish_lock_seconds)


def locked(container: Container, name: str, work: Callable[[], T]) -> T | None:
    """Run work under the job lock; None (and nothing done) when another run holds it."""
    lock = job_lock(container, name)
    if not lock.acquire():
        log.info("job %s is already running elsewhere; this run does nothing", name)
        return None
    try:
        return work()
    finally:
        lock.release()


def run_close(container: Container) -> ClosedWeek | None:
    """Job: close the week that just ended (a second run returns the stored snapshot)."""
    week = default_week(container)
    return locked(container, f"close:{week}", lambda: close_week(container, week))


def run_publish(container: Container, sleep: Callable[[float], None] = time.sleep) -> Publication | None:
    """Job: make sure last week is closed, then publish it once (published or failed records are left alone)."""
    week = default_week(container)

    def work() -> Publication | None:
        close_week(container, week)
        try:
            return PublishService(container, sleep=sleep).publish(str(week))
        except Conflict as exc:
            log.warning("publishing %s skipped: %s", week, exc.message)
            return None

    return locked(container, f"publish:{week}", work)


def run_resume(container: Container, sleep: Callable[[float], None] = time.sleep) -> list[Publication]:
    """Job: resume publications a crash or a slow WeChat left unfinished (never failed ones)."""
    with container.read() as session:
        weeks = session.scalars(select(Publication.week).where(Publication.state.in_(UNFINISHED))).all()
    done = []
    for week in weeks:

        def work(week: str = week) -> Publication | None:
            try:
                return PublishService(container, sleep=sleep).publish(week)
            except Conflict as exc:
                log.warning("resuming %s skipped: %s", week, exc.message)
                return None

        result = locked(container, f"publish:{week}", work)
        if result is not None:
            done.append(result)
    return done


def _cron(setting: str, expression: str, tz: tzinfo) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(expression, timezone=tz)
    except ValueError as exc:
        raise ConfigError(f"REWARDS_{setting.upper()} is not a crontab expression ({expression!r}): {exc}") from exc


def build_scheduler(container: Container, scheduler: BaseScheduler | None = None) -> BaseScheduler:
    """Add the weekly jobs to a scheduler (a BlockingScheduler by default) in the program's time zone."""
    s = container.settings
    sched = scheduler or BlockingScheduler(timezone=s.tz)
    jobs: list[tuple[str, Callable[..., object], BaseTrigger]] = [
        ("close-week", run_close, _cron("close_cron", s.close_cron, s.tz)),
        ("publish-week", run_publish, _cron("publish_cron", s.publish_cron, s.tz)),
        ("resume-publications", run_resume, IntervalTrigger(minutes=s.publish_resume_minutes, timezone=s.tz)),
    ]
    for job_id, func, trigger in jobs:
        sched.add_job(
            func,
            trigger,
            args=[container],
            id=job_id,
            replace_existing=True,
            coalesce=True,  # several missed fire times run once
            misfire_grace_time=s.scheduler_misfire_grace_seconds,
            max_instances=1,
        )
    return sched


def run_scheduler(container: Container) -> None:
    """Run the scheduler in the foreground until interrupted."""
    sched = build_scheduler(container)
    for job in sched.get_jobs():
        log.info("scheduled %s: %s", job.id, job.trigger)
    try:
        sched.start()
    except (KeyboardInterrupt, SystemExit):
        log.info("scheduler stopped")
