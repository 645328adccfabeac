"""A citizen's standing read from the SQL ledger agrees with the ranking rule's pure model (PostgreSQL and SQLite)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry

from rewards.bootstrap import Container
from rewards.cases.models import Case, Citizen
from rewards.clock import IsoWeek
from rewards.errors import NotFound
from rewards.leaderboard.ledger_standing import Placing, ledger_standing, points_needed
from rewards.leaderboard.ranking import rank, totals_from_entries
from rewards.leaderboard.schemas import ScopeStandingOut
from rewards.leaderboard.service import STALE
from rewards.prizes import PrizeTable, PrizeTier
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import START, MakeContainer, wipe

WEEK, LAST_WEEK = "2026-W48", "2026-W47"
N = 6


def seed(container: Container, flags: list[tuple[bool, bool]], entries: list[tuple[int, int, int, bool]]) -> list[int]:
    """Insert citizens (verified, banned) and one case + ledger line per entry; return the citizen ids."""
    with container.uow() as uow:
        s = uow.session
        citizens = [
            Citizen(openid=f"o{i}", verified=v, banned=b, snapshot_user=False, created_at=START, updated_at=START)
            for i, (v, b) in enumerate(flags)
        ]
        s.add_all(citizens)
        s.flush()
        for n, (who, points, minute, this_week) in enumerate(entries):
            case = Case(
                case_id=f"C{n}",
                reporter_id=citizens[who].id,
                category="street_lamp",
                status="filed",
                status_at=START,
                reported_at=START,
                updated_at=START,
            )
            s.add(case)
            s.flush()
            s.add(
                LedgerEntry(
                    citizen_id=citizens[who].id,
                    case_pk=case.id,
                    rule=f"r{n}",
                    points=points,
                    week=WEEK if this_week else LAST_WEEK,
                    reason="x",
                    created_at=START + timedelta(minutes=minute),
                )
            )
        return [c.id for c in citizens]


def placing(scope: ScopeStandingOut) -> Placing:
    """A scope of a standing as (points, rank)."""
    return Placing(scope.points, scope.rank)


def model_rank(lines: list[tuple[int, int, object]], citizen_id: int) -> Placing:
    totals = {s.citizen_id: s.points for s in totals_from_entries(lines)}  # type: ignore[arg-type]
    ranked = [s.citizen_id for s in rank(totals_from_entries(lines))]  # type: ignore[arg-type]
    return Placing(totals.get(citizen_id, 0), ranked.index(citizen_id) + 1 if citizen_id in ranked else None)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    flags=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=N, max_size=N),
    entries=st.lists(
        st.tuples(st.integers(0, N - 1), st.integers(-2, 3), st.integers(0, 6), st.booleans()), max_size=24
    ),
    places=st.integers(1, 4),
)
def test_ledger_standing_matches_the_ranking_model(
    container: Container, flags: list[tuple[bool, bool]], entries: list[tuple[int, int, int, bool]], places: int
) -> None:
    wipe(container.engine)
    ids = seed(container, flags, entries)
    tiers = [PrizeTier(first=1, last=1, name="一等奖", value=100)]
    if places > 1:
        tiers.append(PrizeTier(first=2, last=places, name="二等奖", value=50))
    prizes = PrizeTable(tiers)
    lines = [(ids[w], p, START + timedelta(minutes=m), this) for w, p, m, this in entries]
    week_lines = [(c, p, at) for c, p, at, this in lines if this]
    all_lines = [(c, p, at) for c, p, at, _ in lines]
    eligible = {ids[i] for i, (v, b) in enumerate(flags) if v and not b}
    prize_list = rank(totals_from_entries([x for x in week_lines if x[0] in eligible]))
    cutoff = prize_list[places - 1].points if len(prize_list) >= places else None
    with container.read() as session:
        for i, cid in enumerate(ids):
            got = ledger_standing(session, prizes, f"o{i}", WEEK)
            assert got is not None
            assert placing(got.weekly) == model_rank(week_lines, cid)
            assert placing(got.all_time) == model_rank(all_lines, cid)
            prize = model_rank([x for x in week_lines if x[0] in eligible], cid).rank if cid in eligible else None
            on_list = prize is not None and prize <= places
            assert got.prize_rank == (prize if on_list else None)
            expected_tier = None if not on_list else "一等奖" if prize == 1 else "二等奖"
            assert (got.tier.name if got.tier else None) == expected_tier
            assert got.eligibility_note is None if cid in eligible else got.eligibility_note is not None
            expected_need = points_needed(got.weekly.points, cutoff) if cid in eligible and not on_list else None
            assert got.points_to_prize == (0 if on_list else expected_need)  # 0: already on the prize list
        assert ledger_standing(session, prizes, "unknown", WEEK) is None


def test_a_standing_falls_back_to_the_ledger_when_the_boards_fail(
    container: Container, make_container: MakeContainer
) -> None:
    ids = seed(container, [(True, False)] * 2, [(0, 2, 1, True), (1, 3, 2, True), (0, 1, 0, False)])
    dead = redis.Redis(host="127.0.0.1", port=1, decode_responses=True, retry=Retry(NoBackoff(), 0))
    down = make_container(engine=container.engine, redis_client=dead)
    got = down.leaderboard.standing("o0", week=IsoWeek.from_text(WEEK))  # the boards raise: the ledger answers
    # all time 3 each: o0 reached 3 at minute 1, o1 at minute 2, so o0 ranks first
    assert placing(got.weekly) == Placing(2, 2) and placing(got.all_time) == Placing(3, 1)
    assert (
        got.prize_rank == 2 and got.points_to_prize == 0
    )  # second eligible, inside the default prize places: on the list
    assert got.stale is True and got.message == STALE
    with pytest.raises(NotFound):
        down.leaderboard.standing("nobody", week=IsoWeek.from_text(WEEK))
    assert ids
