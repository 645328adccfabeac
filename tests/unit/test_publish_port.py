"""The rules of the publisher port: how WeChat's answers are classified and how the retry policy reacts."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.config import load_settings
from rewards.publish.port import (
    AMBIGUOUS,
    TERMINAL,
    TOKEN,
    TOKEN_ERRCODES,
    TRANSIENT,
    TRANSIENT_ERRCODES,
    PublishError,
    classify,
)
from rewards.publish.service import PublishService


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
    container = SimpleNamespace(
        settings=load_settings(publish_max_attempts=max_attempts, publish_backoff_seconds=1.5), publisher=script
    )
    svc = PublishService(container, sleep=delays.append)  # type: ignore[arg-type]
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
    container = SimpleNamespace(settings=load_settings(publish_backoff_seconds=1.0), publisher=None)
    svc = PublishService(container)  # type: ignore[arg-type]
    assert [svc._delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
