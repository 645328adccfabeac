"""Between a rebuild's swap and the end of its catch-up the new boards may miss entries committed while the rebuild
streamed the ledger. No standing is answered from them in that window: the swap sets a catch-up marker, a standing
is then computed from the ledger (marked stale, right), and the marker goes once the catch-up is done; a rebuild
that dies after its swap leaves the marker, and the projector's next pass finishes the catch-up.

Real PostgreSQL and real Redis. The fault suite's two-worker FLUSHALL burst met this window once: a standing
answered fresh with 0 points 0.09 s after the citizen's 4th point was committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from rewards.bootstrap import Container
from rewards.leaderboard import keys
from rewards.leaderboard import rebuild as rebuild_module
from rewards.leaderboard.rebuild import catch_up_marker, rebuild
from rewards.locks import Lease
from tests.conftest import MakeContainer, flush_prefix
from tests.integration.test_check_rebuild import award


@pytest.fixture
def c(pg_engine: Engine, make_container: MakeContainer) -> Container:
    return make_container(engine=pg_engine)


def marker(c: Container) -> str | None:
    return catch_up_marker(c.redis, c.settings.leaderboard_key_prefix)


@pytest.fixture
def stream_then_award(c: Container, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The next rebuild streams the ledger, then (before its swap) a second valid report of o-1 commits: its
    after-commit apply lands on the old boards, so the new ones miss it until the catch-up."""
    original = rebuild_module.write_rows

    def streamed(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        award(c, "K-2", "o-1")
        return out

    monkeypatch.setattr(rebuild_module, "write_rows", streamed)
    yield


def test_a_standing_between_swap_and_catch_up_comes_from_the_ledger(
    c: Container, stream_then_award: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    award(c, "K-1", "o-1")
    rebuild(c.db, c.boards)
    assert marker(c) is None  # a whole rebuild leaves no marker
    seen: list[Any] = []
    original_catch_up = rebuild_module.catch_up

    def standing_then_catch_up(*args: Any, **kwargs: Any) -> int:
        seen.append(c.leaderboard.standing("o-1"))  # right after the swap, before anything is caught up
        return int(original_catch_up(*args, **kwargs))

    monkeypatch.setattr(rebuild_module, "catch_up", standing_then_catch_up)
    rebuild(c.db, c.boards)
    (between,) = seen
    assert between.stale and between.all_time.points == 2  # from the ledger: both points, marked stale
    assert marker(c) is None
    after = c.leaderboard.standing("o-1")
    assert not after.stale and after.all_time.points == 2


def test_a_rebuild_that_dies_after_its_swap_is_caught_up_by_the_projector(
    c: Container, stream_then_award: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    award(c, "K-1", "o-1")
    rebuild(c.db, c.boards)

    def killed(*_: Any, **__: Any) -> int:
        raise RuntimeError("the rebuild's process died here")

    monkeypatch.setattr(rebuild_module, "catch_up", killed)
    with pytest.raises(RuntimeError):
        rebuild(c.db, c.boards)
    gen = c.boards.generation(fresh=True)
    assert (marker(c) or "").startswith(f"{gen}:")
    held = c.leaderboard.standing("o-1")
    assert held.stale and held.all_time.points == 2  # the new boards miss K-2: not shown as fresh
    monkeypatch.undo()  # the process that runs the projector has the real catch-up
    status = c.projector.catch_up()
    assert status.ok and marker(c) is None
    fresh = c.leaderboard.standing("o-1")
    assert not fresh.stale and fresh.all_time.points == 2


def test_a_marker_of_an_older_generation_is_dropped(c: Container) -> None:
    award(c, "K-1", "o-1")
    rebuild(c.db, c.boards)
    gen = c.boards.generation(fresh=True)
    c.redis.set(keys.catchup_key(c.settings.leaderboard_key_prefix), f"{gen - 1 if gen > 1 else gen + 7}:0")
    assert not c.leaderboard.standing("o-1").stale  # another generation's marker says nothing about this one
    c.projector.catch_up()
    assert marker(c) is None


def test_a_worker_that_loses_the_race_to_rebuild_lost_boards_answers_from_the_ledger(c: Container) -> None:
    """The fault suite's two-worker FLUSHALL burst: both workers' projectors find the boards gone; one rebuilds under
    the lease, the other's pass meets RebuildRunning. That one had forgotten its generation on the way, so it read the
    absent pointer as "never built" and answered standings from an empty generation 0, fresh and wrong (0 points,
    0.05 s after the citizen's 4th point). A process that has seen the boards built keeps them lost until a
    generation is back in place."""
    award(c, "K-1", "o-1")
    rebuild(c.db, c.boards)
    before = c.leaderboard.standing("o-1")
    assert not before.stale and before.all_time.points > 0
    flush_prefix(c.redis, c.settings.leaderboard_key_prefix)  # FLUSHALL, as far as this test's keys go
    other_worker = Lease(c.redis, keys.lock_key(c.settings.leaderboard_key_prefix), 60)
    assert other_worker.acquire()
    try:
        status = c.projector.catch_up()
        assert not status.ok and "RebuildRunning" in (status.error or "")
        during = c.leaderboard.standing("o-1")
        assert during.stale and during.all_time.points == before.all_time.points
        award(c, "K-2", "o-1")  # its after-commit apply finds the boards lost: nothing is written to generation 0
        assert not c.redis.exists(keys.base(c.settings.leaderboard_key_prefix, 0) + "at")
    finally:
        other_worker.release()
    c.projector.catch_up()  # the lease is free: this worker rebuilds
    after = c.leaderboard.standing("o-1")
    assert not after.stale and after.all_time.points == 2 * before.all_time.points


def test_a_worker_starting_while_another_rebuilds_answers_from_the_ledger(
    c: Container, make_container: MakeContainer, pg_engine: Engine
) -> None:
    """Two workers start on a Redis without boards: one rebuilds under the lease, the other's start-up meets
    RebuildRunning. Until the first one's generation is in place, the second answers standings from the ledger
    (stale, right) and writes no award into an empty generation 0."""
    award(c, "K-1", "o-1")
    prefix = c.settings.leaderboard_key_prefix
    flush_prefix(c.redis, prefix)
    first_worker = Lease(c.redis, keys.lock_key(prefix), 60)
    assert first_worker.acquire()
    try:
        second = make_container(c.settings, engine=pg_engine)
        assert second.prepare() is None  # the rebuild is running elsewhere
        during = second.leaderboard.standing("o-1")
        assert during.stale and during.all_time.points > 0
        award(second, "K-2", "o-1")
        assert not c.redis.exists(keys.base(prefix, 0) + "at")
    finally:
        first_worker.release()
    rebuild(c.db, c.boards)  # the first worker's rebuild lands
    second.projector.catch_up()  # the award whose board update found the boards lost is caught up
    after = second.leaderboard.standing("o-1")
    assert not after.stale and after.all_time.points == 2 * during.all_time.points
