"""`rewards scheduler`: one APScheduler process closing last week after Monday 00:00 and publishing it.

Jobs run in the program's time zone with coalesce, a misfire grace and one instance at a time; each run also
takes a Redis lock, so a second scheduler, or a job firing twice, does nothing: the work is idempotent and
never runs concurrently. Web workers never start this (only the CLI command does).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from rewards.errors import ConfigError
from rewards.logs import get_logger
from rewards.publish.jobs import WeeklyJobs

log = get_logger("scheduler")


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
    if jobs.finalize is not None:  # 定榜: weeks whose objection window ended (rewards.review, wired by bootstrap)
        entries.append(
            ("finalize-weeks", jobs.run_finalize, IntervalTrigger(minutes=s.publish_resume_minutes, timezone=s.tz))
        )
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
