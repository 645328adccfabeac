"""`rewards close-week` and `rewards publish` as an operator runs them: clear messages, exit codes != 0 on errors."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rewards.bootstrap import Container
from rewards.cli import app
from rewards.clock import IsoWeek
from tests.conftest import REDIS_URL
from tests.fakes import publish_env
from tests.fakes.ledger_seed import Person, add_citizens, add_entries
from tests.fakes.wechat_server import WeChatServer

wx = publish_env.wx
wx_container = publish_env.wx_container
WEEK = "2026-W40"  # long finished, whatever the wall clock says


@pytest.fixture
def env(wx_container: Container, wx: WeChatServer, tmp_path: Path) -> dict[str, str]:
    """The environment a deployment would set, pointing at the test database, Redis and the stand-in."""
    s = wx_container.settings
    return {
        "REWARDS_DATABASE_URL": wx_container.engine.url.render_as_string(hide_password=False),
        "REWARDS_REDIS_URL": REDIS_URL,
        "REWARDS_LEADERBOARD_KEY_PREFIX": s.leaderboard_key_prefix,
        "REWARDS_WECHAT_APP_ID": wx.appid,
        "REWARDS_WECHAT_APP_SECRET": wx.secret,
        "REWARDS_WECHAT_API_BASE": wx.base_url,
        "REWARDS_PUBLISH_POLL_SECONDS": "0",
        "REWARDS_PUBLISH_BACKOFF_SECONDS": "0",
        "REWARDS_OUTBOX_DIR": str(tmp_path / "outbox"),
    }


def seed(container: Container, week: str = WEEK) -> None:
    """Three eligible winners in a week."""
    start = IsoWeek.parse(week).start(container.settings.tz)
    ids = add_citizens(container, [Person("张三明"), Person("李四"), Person("王五")], start)
    add_entries(container, week, [(cid, 5 - i, start + timedelta(hours=i)) for i, cid in enumerate(ids)])


def rewards(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    """Run the `rewards` command."""
    return CliRunner().invoke(app, list(args), env=env)


def test_close_week_prints_the_snapshot_and_a_second_close_the_same_one(wx_container: Container, env: dict) -> None:
    seed(wx_container)
    first = rewards(env, "close-week", "--week", WEEK)
    assert first.exit_code == 0, first.output
    assert f"closed {WEEK}: 3 winners of 3 eligible participants" in first.stdout
    assert "张*明" in first.stdout and "张三明" not in first.stdout
    second = rewards(env, "close-week", "--week", WEEK)
    assert second.exit_code == 0 and f"already closed {WEEK}" in second.stdout
    checksum = next(line for line in first.stdout.splitlines() if line.startswith("checksum"))
    assert checksum in second.stdout


@pytest.mark.parametrize(
    ("week", "message"),
    [("2099-W01", "has not ended yet"), ("2026-48", "not an ISO week"), ("2026-W99", "week out of range")],
)
def test_close_week_refuses_with_a_clear_message(env: dict, week: str, message: str) -> None:
    result = rewards(env, "close-week", "--week", week)
    assert result.exit_code == 2 and message in result.stderr


def test_publish_reports_failure_with_the_reason_and_retry_resumes(
    wx_container: Container, wx: WeChatServer, env: dict, caplog: pytest.LogCaptureFixture
) -> None:
    none = rewards(env, "publish", "--week", WEEK, "--status")
    assert none.exit_code == 2 and "has no publication yet" in none.stderr
    unclosed = rewards(env, "publish", "--week", WEEK)
    assert unclosed.exit_code == 2 and "not closed yet" in unclosed.stderr
    seed(wx_container)
    assert rewards(env, "close-week", "--week", WEEK).exit_code == 0
    wx.inject("draft/add", "errcode", 48001)
    with caplog.at_level(logging.ERROR, logger="rewards.publish"):
        failed = rewards(env, "publish", "--week", WEEK)
    assert failed.exit_code == 1
    assert "48001" in failed.stderr and "api unauthorized" in failed.stderr and "--retry" in failed.stderr
    assert any("48001" in r.getMessage() and WEEK in r.getMessage() for r in caplog.records)  # and in the log
    status = rewards(env, "publish", "--week", WEEK, "--status")
    assert status.exit_code == 0
    assert "state:        failed" in status.stdout
    assert "error:        48001 draft/add: api unauthorized" in status.stdout
    calls = len(wx.calls)
    again = rewards(env, "publish", "--week", WEEK)  # never retried blindly
    assert again.exit_code == 1 and len(wx.calls) == calls
    retried = rewards(env, "publish", "--week", WEEK, "--retry")
    assert retried.exit_code == 0, retried.output
    assert "state:        published" in retried.stdout and "https://mp.weixin.qq.com/s/" in retried.stdout
    assert wx.state.drafts_created == 1 and len(wx.posts()) == 1


def test_an_unfinished_publication_exits_3_and_the_next_run_finishes_it(
    wx_container: Container, wx: WeChatServer, env: dict
) -> None:
    seed(wx_container)
    rewards(env, "close-week", "--week", WEEK)
    wx.publish_ticks = 40  # WeChat is slow: more than publish_max_polls (30)
    slow = rewards(env, "publish", "--week", WEEK)
    assert slow.exit_code == 3 and "running the command again resumes it" in slow.stderr
    wx.publish_ticks = 0
    for job in wx.state.jobs.values():
        job.ticks_left = 0
    done = rewards(env, "publish", "--week", WEEK)
    assert done.exit_code == 0 and wx.state.submits == 1


def test_finalize_waits_for_the_objection_window_with_a_clear_message(wx_container: Container, env: dict) -> None:
    seed(wx_container)
    assert rewards(env, "close-week", "--week", WEEK).exit_code == 0
    not_yet = rewards(env, "finalize", "--week", WEEK)
    assert not_yet.exit_code == 3, not_yet.output
    assert "not published yet" in not_yet.stderr
    assert rewards(env, "publish", "--week", WEEK).exit_code == 0
    waiting = rewards(env, "finalize", "--week", WEEK)  # the 3-day window opened just now
    assert waiting.exit_code == 3, waiting.output
    assert "objection window is still open" in waiting.stderr
    assert wx_container.review.final(WEEK) is None


def test_finalize_with_no_window_makes_the_list_final_once(wx_container: Container, env: dict) -> None:
    seed(wx_container)
    env = env | {"REWARDS_OBJECTION_WINDOW_DAYS": "0"}
    assert rewards(env, "close-week", "--week", WEEK).exit_code == 0
    assert rewards(env, "publish", "--week", WEEK).exit_code == 0
    first = rewards(env, "finalize", "--week", WEEK)
    assert first.exit_code == 0, first.output
    assert "final:        yes, version 1" in first.stdout
    assert "claim codes:  3" in first.stdout
    again = rewards(env, "finalize", "--week", WEEK)
    assert again.exit_code == 0, again.output
    assert "claim codes:  3" in again.stdout
    bad = rewards(env, "finalize", "--week", "2026-W99")
    assert bad.exit_code != 0 and "week" in bad.output
