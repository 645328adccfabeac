"""Shared pieces for publishing tests: the stand-in server fixture, a WeChat-wired container, a crashing
publisher (a process dying between two calls) and a recording sleep."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from rewards.bootstrap import Container
from rewards.clock import IsoWeek
from rewards.config import Settings
from rewards.publish.port import Publisher
from rewards.publish.service import PublishService
from tests.conftest import MakeContainer, test_settings
from tests.fakes.ledger_seed import Person, add_citizens, add_entries
from tests.fakes.wechat_server import WeChatServer

WEEK = "2026-W47"


class SimulatedCrash(BaseException):  # BaseException: no `except Exception` in product code catches it
    """The process dies here."""


class Sleeper:
    """Records requested delays instead of waiting; optionally lets the stand-in finish in-flight work."""

    def __init__(self, wx: WeChatServer | None = None) -> None:
        self.delays: list[float] = []
        self.wx = wx

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.wx is not None:
            self.wx.wait_idle()


class CrashingPublisher:
    """Delegates to a real publisher and dies before or after the n-th call of one method."""

    def __init__(self, inner: Publisher, method: str, when: str, nth: int = 1) -> None:
        self.inner, self.method, self.when, self.nth = inner, method, when, nth
        self.channel = inner.channel
        self.seen = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name != self.method:
            return target

        def wrapped(*args: Any) -> Any:
            self.seen += 1
            if self.seen == self.nth and self.when == "before":
                raise SimulatedCrash(f"crash before {name}")
            result = target(*args)
            if self.seen == self.nth and self.when == "after":
                raise SimulatedCrash(f"crash after {name} answered {result!r}")
            return result

        return wrapped


@pytest.fixture
def wx() -> Iterator[WeChatServer]:
    """The stand-in WeChat API on loopback."""
    with WeChatServer() as server:
        yield server


def wechat_settings(wx: WeChatServer, outbox: Path, **overrides: object) -> Settings:
    """Test settings pointing the publisher at the stand-in, with instant polls and backoff."""
    values: dict[str, object] = {
        "wechat_app_id": wx.appid,
        "wechat_app_secret": wx.secret,
        "wechat_api_base": wx.base_url,
        "outbox_dir": outbox,
        "publish_poll_seconds": 0,
        "publish_backoff_seconds": 0.5,
        "publish_max_attempts": 4,
        "publish_max_polls": 5,
        "wechat_timeout_seconds": 2,
    }
    values.update(overrides)
    return test_settings(**values)


@pytest.fixture
def wx_container(db_engine: Engine, make_container: MakeContainer, wx: WeChatServer, tmp_path: Path) -> Container:
    """The real service (PostgreSQL and SQLite, real Redis) publishing to the stand-in; its jobs sleep instantly."""
    return make_container(wechat_settings(wx, tmp_path / "outbox"), engine=db_engine, sleep=Sleeper())


def close_w47(container: Container, winners: int = 3) -> list[int]:
    """Seed W47 with `winners` eligible citizens (distinct totals) and close it; return their ids by rank."""
    week = IsoWeek.parse(WEEK)
    start = week.start(container.settings.tz)
    ids = add_citizens(container, [Person(f"市民{i}号") for i in range(winners)], start)
    add_entries(container, WEEK, [(cid, winners - i + 1, start + timedelta(hours=i)) for i, cid in enumerate(ids)])
    container.closer.close(week)
    return ids


def service(container: Container, sleeper: Sleeper | None = None, publisher: Publisher | None = None) -> PublishService:
    """A publish service with a recording sleep (and, when given, another publisher)."""
    c = container
    return PublishService(
        c.db, c.clock, c.settings, c.program, publisher or c.publisher, c.leases, sleep=sleeper or Sleeper()
    )
