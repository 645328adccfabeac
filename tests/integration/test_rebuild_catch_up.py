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
from tests.conftest import MakeContainer
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
