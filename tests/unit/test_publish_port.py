"""The rules of the publisher port: how WeChat's answers are classified and how the retry policy reacts."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from rewards.clock import FixedClock
from rewards.config import Settings, load_settings
from rewards.db import Database
from rewards.locks import Leases
from rewards.program import Program
from rewards.publish.outbox import OutboxPublisher
from rewards.publish.port import (
    AMBIGUOUS,
    TERMINAL,
    TOKEN,
    TOKEN_ERRCODES,
    TRANSIENT,
    TRANSIENT_ERRCODES,
    Publisher,
    PublishError,
    classify,
)
from rewards.publish.service import PublishService
from rewards.scoring.service import rule_settings


@given(st.integers(-10, 100_000))
def test_errcodes_are_classified(code: int) -> None:
    kind = classify(code)
    assert (kind == TOKEN) == (code in {40001, 40014, 42001})
    assert (kind == TRANSIENT) == (code in {-1, 45009})
    assert kind in (TOKEN, TRANSIENT, TERMINAL)
    assert classify(48001) == TERMINAL and classify(53503) == TERMINAL


@given(st.one_of(st.none(), st.integers(100, 599)))
def test_http_statuses_without_an_errcode_are_classified(status: int | None) -> None:
    expected = TRANSIENT if status is None or status >= 500 or status == 429 else TERMINAL
    assert classify(None, status) == expected
    assert TOKEN_ERRCODES.isdisjoint(TRANSIENT_ERRCODES)


class Script:
    """A call that fails with the given kinds, in order, then succeeds."""

    def __init__(self, kinds: list[str]) -> None:
        self.kinds, self.calls, self.refreshes = list(kinds), 0, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.kinds:
            kind = self.kinds.pop(0)
            raise PublishError(kind, 45009 if kind == TRANSIENT else None, kind)  # type: ignore[arg-type]
        return "ok"

    def refresh_token(self) -> None:
        self.refreshes += 1


# what the retry policy never touches (`_call` and `_delay` use only settings, the publisher and sleep): built
# once, and nothing connects
UNUSED_DB = Database(create_engine("sqlite://"))
UNUSED_LEASES = Leases(redis.Redis())
CLOCK = FixedClock(datetime(2026, 11, 23, tzinfo=UTC))


def policy_of(settings: Settings, publisher: Publisher, sleep: Callable[[float], None]) -> PublishService:
    """A publish service to exercise its retry policy."""
    program = Program(rule_settings(settings), settings.prize_table, settings.timezone)
    return PublishService(UNUSED_DB, CLOCK, settings, program, publisher, UNUSED_LEASES, sleep)


def model(kinds: list[str], max_attempts: int, reconciles: bool) -> tuple[str, int, int]:
    """The policy stated plainly: (outcome, calls, refreshes)."""
    attempts = refreshes = calls = 0
    for kind in [*kinds, "ok"]:
        calls += 1
        if kind == "ok":
            return "ok", calls, refreshes
        if kind == TERMINAL:
            return "raise", calls, refreshes
        if kind == TOKEN:
            if refreshes:
                return "raise", calls, refreshes
            refreshes = 1
            continue
        if kind == AMBIGUOUS and reconciles:
            return "found", calls, refreshes
        attempts += 1
        if attempts >= max_attempts:
            return "raise", calls, refreshes
    raise AssertionError("unreachable")


@settings(max_examples=300, deadline=None)
@given(
    kinds=st.lists(st.sampled_from([TOKEN, TRANSIENT, AMBIGUOUS, TERMINAL]), max_size=8),
    max_attempts=st.integers(1, 5),
    reconciles=st.booleans(),
)
def test_the_retry_policy_follows_its_model(kinds: list[str], max_attempts: int, reconciles: bool) -> None:
    script = Script(kinds)
    delays: list[float] = []
    settings = load_settings(publish_max_attempts=max_attempts, publish_backoff_seconds=1.5)
    svc = policy_of(settings, script, delays.append)  # type: ignore[arg-type]
    reconcile = (lambda: "found") if reconciles else (lambda: None)
    expected, calls, refreshes = model(kinds, max_attempts, reconciles)
    if expected == "raise":
        with pytest.raises(PublishError):
            svc._call("x", script, reconcile=reconcile)
    else:
        assert svc._call("x", script, reconcile=reconcile) == expected
    assert (script.calls, script.refreshes) == (calls, refreshes)
    assert delays == sorted(delays) and all(d <= 60 for d in delays)  # backoff never shrinks, capped
    assert all(b in (a, 2 * a, 60) for a, b in itertools.pairwise(delays))


def test_backoff_doubles_and_is_capped() -> None:
    settings = load_settings(publish_backoff_seconds=1.0)
    svc = policy_of(settings, OutboxPublisher(settings.outbox_dir), lambda _: None)
    assert [svc._delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
