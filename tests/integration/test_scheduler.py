"""The scheduler: its triggers, its job functions and locks, and two schedulers racing for one publication."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine, func, select

from rewards.bootstrap import Container
from rewards.errors import ConfigError
from rewards.leaderboard.weeks import WeeklySnapshot
from rewards.locks import Lease
from rewards.publish.models import FAILED, PUBLISHED, Publication
from rewards.publish.scheduler import build_scheduler
from tests.conftest import MakeContainer, test_settings
from tests.fakes import publish_env
from tests.fakes.publish_env import WEEK, CrashingPublisher, SimulatedCrash, close_w47, service
from tests.fakes.wechat_server import WeChatServer

wx = publish_env.wx
wx_container = publish_env.wx_container
ROOT = Path(__file__).resolve().parents[2]


def test_the_real_scheduler_has_its_triggers_in_the_program_time_zone(container: Container) -> None:
    sched = build_scheduler(container.jobs, BackgroundScheduler(timezone=container.settings.tz))
    jobs = {job.id: job for job in sched.get_jobs()}
    assert set(jobs) == {"close-week", "publish-week", "resume-publications", "finalize-weeks"}  # 定榜: review
    now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    close_at = jobs["close-week"].trigger.get_next_fire_time(None, now)
    publish_at = jobs["publish-week"].trigger.get_next_fire_time(None, now)
    assert close_at.isoformat() == "2026-11-30T00:05:00+08:00"  # right after Monday 00:00 in Shanghai
    assert publish_at.isoformat() == "2026-11-30T10:00:00+08:00"
    for job in jobs.values():
        assert (job.coalesce, job.max_instances) == (True, 1)
        assert job.misfire_grace_time == container.settings.scheduler_misfire_grace_seconds
    assert jobs["resume-publications"].trigger.interval.total_seconds() == 60  # every minute (a requested retry)


def test_a_bad_cron_expression_is_a_clear_configuration_error(
    container: Container, make_container: MakeContainer
) -> None:
    broken = make_container(test_settings(publish_cron="every monday"), engine=container.engine)
    with pytest.raises(ConfigError, match="REWARDS_PUBLISH_CRON"):
        build_scheduler(broken.jobs, BackgroundScheduler())


def test_the_lock_is_held_by_one_holder_and_released_only_by_it(container: Container) -> None:
    key = f"{container.settings.leaderboard_key_prefix}:test-lock"
    first, second = Lease(container.redis, key, 5), Lease(container.redis, key, 5)
    assert first.acquire() and not second.acquire()
    assert not second.release() and first.held and not second.held  # not theirs to release
    assert first.renew() and not second.renew()
    assert first.release() and second.acquire()
    second.release()
    short = Lease(container.redis, key, 0.2)
    assert short.acquire()
    time.sleep(0.35)  # the holder died: the lease runs out
    assert first.acquire() and not short.renew()
    first.release()


def test_a_job_already_running_elsewhere_does_nothing(container: Container) -> None:
    jobs = container.jobs
    other = container.leases.lease(f"{container.settings.leaderboard_key_prefix}:scheduler:close:2026-W47", 30)
    assert other.acquire()
    ran: list[int] = []
    assert jobs.locked("close:2026-W47", lambda: ran.append(1)) is None and ran == []
    assert jobs.run_close() is None  # the close job for W47 is held by "another scheduler"
    other.release()
    first, second = jobs.run_close(), jobs.run_close()  # a double fire: the second changes nothing
    assert first is not None and second is not None and first.created and not second.created
    assert first.checksum == second.checksum
    with container.read() as session:
        assert session.scalar(select(func.count()).select_from(WeeklySnapshot)) == 1


def test_the_publish_job_closes_and_publishes_once_and_a_second_fire_does_nothing(
    wx_container: Container, wx: WeChatServer
) -> None:
    close_w47(wx_container)
    pub = wx_container.jobs.run_publish()
    assert pub is not None and pub.state == PUBLISHED
    calls = len(wx.calls)
    again = wx_container.jobs.run_publish()
    assert again is not None and again.state == PUBLISHED and len(wx.calls) == calls


def test_the_resume_job_finishes_a_crashed_run_and_leaves_failed_ones_alone(
    wx_container: Container, wx: WeChatServer
) -> None:
    close_w47(wx_container)
    crashing = CrashingPublisher(wx_container.publisher, "add_draft", "after")
    with pytest.raises(SimulatedCrash):
        service(wx_container, publisher=crashing).publish(WEEK)  # type: ignore[arg-type]
    (done,) = wx_container.jobs.run_resume()
    assert done.state == PUBLISHED and wx.state.drafts_created == 1 and len(wx.posts()) == 1
    assert wx_container.jobs.run_resume() == []
    wx.inject("*", "errcode", 48001, times=-1)
    # a failed record is not retried by the sweep (until someone asks: request_retry)
    with wx_container.uow() as uow:
        pub = uow.session.scalars(select(Publication)).one()
        pub.state, pub.error_code = FAILED, 48001
    calls = len(wx.calls)
    assert wx_container.jobs.run_resume() == [] and len(wx.calls) == calls


def test_two_schedulers_racing_produce_one_publication(
    db_engine: Engine, make_container: MakeContainer, wx: WeChatServer, tmp_path: Path
) -> None:
    settings = publish_env.wechat_settings(wx, tmp_path)
    # the factory wipes the prefix before the first one: no access token cached by an earlier test
    containers = [make_container(settings, engine=db_engine) for _ in range(2)]
    assert containers[0].publisher is not containers[1].publisher  # two processes, two WeChat clients
    close_w47(containers[0])
    done = threading.Semaphore(0)
    outcomes: list[JobExecutionEvent] = []

    def listener(event: JobExecutionEvent) -> None:
        if event.job_id == "publish-week":
            outcomes.append(event)
            done.release()

    schedulers = []
    for c in containers:
        sched = build_scheduler(c.jobs, BackgroundScheduler(timezone=c.settings.tz))
        sched.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        schedulers.append(sched)
    fire_at = datetime.now(UTC)
    for sched in schedulers:
        sched.start(paused=True)
        sched.modify_job("publish-week", next_run_time=fire_at)
    for sched in schedulers:
        sched.resume()
    try:
        assert done.acquire(timeout=30) and done.acquire(timeout=30)
    finally:
        for sched in schedulers:
            sched.shutdown(wait=True)
    assert all(e.exception is None for e in outcomes)
    assert wx.state.drafts_created == 1 and wx.state.submits == 1 and len(wx.posts()) == 1
    assert len(wx.calls_to("media/uploadimg")) == 1 and len(wx.calls_to("material/add_material")) == 1
    assert service(containers[0]).get(WEEK).state == PUBLISHED  # type: ignore[union-attr]


def test_web_workers_never_start_the_scheduler(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from rewards import migrate\n"
        "from rewards.config import load_settings\n"
        "from rewards.db import make_engine\n"
        "migrate.upgrade(make_engine(load_settings().database_url))\n"
        "from rewards.asgi import app_factory\n"
        "app_factory()\n"
        "assert 'apscheduler' not in sys.modules, 'a web worker imported the scheduler'\n"
        "assert 'rewards.publish.scheduler' not in sys.modules\n"
    )
    env = {**os.environ, "REWARDS_DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}"}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
