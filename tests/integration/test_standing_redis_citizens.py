"""The citizen data a standing reads from Redis (openid -> citizen, masked name, banned flag, district, eligibility)
follows the citizens table: the one-script standing equals the SQL-assisted one, a ban, an unban, a name or
district change shows in the next standing, `rewards check` reports drift in it and `rebuild` repairs it."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine

from rewards.bootstrap import Container
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter, SetBan
from rewards.cases.models import Case, Citizen
from rewards.clock import week_of
from rewards.leaderboard import keys, scores
from rewards.leaderboard.check import check
from rewards.leaderboard.ledger_standing import BANNED, NOT_VERIFIED
from rewards.leaderboard.rebuild import rebuild
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import START, MakeContainer
from tests.integration.test_check_rebuild import free_port, start_redis

ACTOR = Actor("validator-1", "console")
NAMES = st.one_of(st.none(), st.sampled_from(["张三", "李小明", "欧阳娜娜", "王", " ", "Ann Lee"]))
PHONES = st.one_of(st.none(), st.sampled_from(["13800001234", "021-5555", "8"]))


@st.composite
def crowds(draw: st.DrawFn) -> tuple[list[dict[str, object]], list[tuple[int, int, int]]]:
    """Citizens (name, phone, district, verified, banned) and ledger lines (citizen index, points, minute)."""
    n = draw(st.integers(1, 9))
    citizens = [
        {
            "name": draw(NAMES),
            "phone": draw(PHONES),
            "district": draw(st.sampled_from([None, "城关区", "七里河区"])),
            "verified": draw(st.booleans()),
            "banned": draw(st.booleans()),
        }
        for _ in range(n)
    ]
    lines = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(-2, 4), st.integers(0, 300)), max_size=25))
    return citizens, lines


def seed(c: Container, citizens: list[dict[str, object]], lines: list[tuple[int, int, int]]) -> list[str]:
    """Write citizens, cases and ledger rows straight to SQL; return the openids."""
    with c.uow() as uow:
        s = uow.session
        rows = [
            Citizen(openid=f"o{i}", snapshot_user=False, created_at=START, updated_at=START, **fields)
            for i, fields in enumerate(citizens)
        ]
        s.add_all(rows)
        s.flush()
        for n, (who, points, minute) in enumerate(lines):
            at = START + timedelta(minutes=minute)
            case = Case(
                case_id=f"C{n}",
                reporter_id=rows[who].id,
                category="street_lamp",
                status="filed",
                status_at=at,
                reported_at=at,
                updated_at=at,
            )
            s.add(case)
            s.flush()
            week = str(week_of(at, c.settings.tz))
            s.add(
                LedgerEntry(
                    citizen_id=rows[who].id,
                    case_pk=case.id,
                    rule="valid_report",
                    points=points,
                    week=week,
                    reason="x",
                    created_at=at,
                )
            )
    return [r.openid for r in rows]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(crowds(), st.integers(1, 3))
def test_the_one_script_standing_equals_the_sql_assisted_one(per_example, crowd, neighbours: int) -> None:  # type: ignore[no-untyped-def]
    citizens, lines = crowd
    c: Container = per_example()
    openids = seed(c, citizens, lines)
    rebuild(c.db, c.boards)
    assert check(c.db, c.boards).clean
    svc = c.leaderboard
    week = str(svc.current_week())
    for openid in openids:
        fast = svc.from_redis(openid, week, neighbours)
        assert fast is not None, f"{openid} has no citizen data in Redis after a rebuild"
        assert fast == svc.from_sql_and_boards(openid, week, neighbours)
    assert svc.from_redis("nobody", week) is None


def award(c: Container, case_id: str, openid: str, *, name: str | None = None, district: str | None = None) -> None:
    """Report a case and file it as valid through the flows (ledger row, then the boards after commit)."""
    reporter = Reporter(openid=openid, name=name, district=district, verified=True)
    with c.uow() as uow:
        c.flows.report(uow, ReportCase(case_id, "street_lamp", c.clock.now(), reporter), ACTOR)
    with c.uow() as uow:
        c.flows.verdict(uow, GiveVerdict(case_id, "valid"), ACTOR)


def ban(c: Container, openid: str, banned: bool) -> None:
    with c.uow() as uow:
        c.flows.set_banned(uow, SetBan(openid, banned, "摆拍"), ACTOR)


def summary(c: Container, openid: str) -> dict[str, str]:
    p = c.settings.leaderboard_key_prefix
    gen = c.boards.generation(fresh=True)
    member = c.redis.hget(keys.openids_key(p, gen), openid)
    assert member is not None, f"{openid} is not mapped in Redis"
    fields: dict[str, str] = c.redis.hgetall(keys.base(p, gen) + "c:" + member)  # type: ignore[assignment]
    return fields


def test_bans_unbans_name_and_district_changes_reach_the_next_standing(container: Container) -> None:
    c = container
    c.prepare()  # boards built (empty): the generation exists
    award(c, "C1", "o1", name="张三丰", district="城关区")
    c.clock.advance(minutes=1)  # type: ignore[attr-defined]
    award(c, "C2", "o2", name="李四", district="城关区")
    svc, week = c.leaderboard, str(c.leaderboard.current_week())
    # a citizen's first award writes their data: the standing is answered by the one script, no SQL
    mine = svc.from_redis("o2", week)
    assert mine is not None and mine.eligible and mine.weekly.above[0].name == "张*丰"
    assert check(c.db, c.boards).clean

    ban(c, "o2", True)  # after commit: off the prize list, and the note says banned
    mine = svc.from_redis("o2", week)
    assert mine is not None and not mine.eligible and mine.eligibility_note == BANNED and mine.prize_rank is None
    assert svc.standing("o2") == mine
    ban(c, "o2", False)
    mine = svc.from_redis("o2", week)
    assert mine is not None and mine.eligible and mine.prize_rank == 2 and mine.eligibility_note is None

    award(c, "C3", "o1", district="七里河区")  # a district move: o1 leaves 城关区's board at once
    assert summary(c, "o1")["d"] == "七里河区"
    p, gen = c.settings.leaderboard_key_prefix, c.boards.generation()
    assert c.redis.zscore(keys.board_key(p, gen, keys.district_weekly(week, "城关区")), keys.member(1)) is None
    assert check(c.db, c.boards).clean

    with c.uow() as uow:  # a new name comes with a report (a citizen_changes row in the same transaction)
        c.flows.report(uow, ReportCase("C4", "street_lamp", c.clock.now(), Reporter("o1", name="赵六")), ACTOR)
    report = check(c.db, c.boards)
    assert any("citizen data of citizen 1" in d and "'张*丰'" in d for d in report.differences), report.differences
    c.projector.catch_up()  # the projector restates changed citizens from the citizens table
    mine = svc.from_redis("o2", week)
    assert mine is not None and [n.name for n in mine.weekly.above] == ["赵*"]
    assert svc.standing("o2") == mine
    assert check(c.db, c.boards).clean


def test_a_citizen_redis_does_not_know_yet_is_answered_from_sql(container: Container) -> None:
    c = container
    c.prepare()
    with c.uow() as uow:  # created by a report that is not validated yet: no points, not projected yet
        c.flows.report(uow, ReportCase("C1", "street_lamp", c.clock.now(), Reporter("o9", name="孙七")), ACTOR)
    svc, week = c.leaderboard, str(c.leaderboard.current_week())
    assert svc.from_redis("o9", week) is None
    assert check(c.db, c.boards).clean  # no points and not projected yet: the standing asks SQL, no drift
    slow = svc.standing("o9")
    assert slow.eligible is False and slow.eligibility_note == NOT_VERIFIED and not slow.weekly.ranked
    c.projector.catch_up()
    assert svc.from_redis("o9", week) == slow
    assert summary(c, "o9")["n"] == "孙*"  # masked in Redis too: no raw names there


CITIZEN_DRIFT = ["name", "banned", "eligible", "unmapped", "mapped_elsewhere", "stray_openid", "dropped"]


@pytest.mark.parametrize("how", CITIZEN_DRIFT)
def test_check_reports_drift_in_the_citizen_data_and_rebuild_repairs_it(container: Container, how: str) -> None:
    c = container
    c.prepare()
    award(c, "C1", "o1", name="张三丰")
    award(c, "C2", "o2", name="李四")
    assert check(c.db, c.boards).clean
    p, gen = c.settings.leaderboard_key_prefix, c.boards.generation(fresh=True)
    s, oid = keys.summary_key(p, gen, 1), keys.openids_key(p, gen)
    mention = "citizen data of citizen 1"
    if how == "name":
        c.redis.hset(s, "n", "王*五")
    elif how == "banned":
        c.redis.hset(s, "b", "1")
    elif how == "eligible":
        c.redis.hset(s, "el", "0")
    elif how == "unmapped":
        c.redis.hdel(oid, "o1")
    elif how == "mapped_elsewhere":
        c.redis.hset(oid, "o1", keys.member(2))
    elif how == "stray_openid":
        c.redis.hset(oid, "ghost", keys.member(7))
        mention = "openids mapped in Redis"
    else:
        c.redis.hdel(s, "n", "b")
    report = check(c.db, c.boards)
    assert any(mention in line for line in report.differences), report.differences
    rebuild(c.db, c.boards)
    assert check(c.db, c.boards).clean
    assert c.leaderboard.from_redis("o1", str(c.leaderboard.current_week())) is not None


def test_a_standing_survives_redis_forgetting_its_scripts(db_engine: Engine, make_container: MakeContainer) -> None:
    port = free_port()
    server = start_redis(port)  # a private server: SCRIPT FLUSH must not disturb other tests' scripts
    client = redis.Redis(port=port, decode_responses=True, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    try:
        c = make_container(engine=db_engine, redis_client=client)
        c.prepare()
        award(c, "C1", "o1", name="张三丰")
        week = str(c.leaderboard.current_week())
        before = c.leaderboard.from_redis("o1", week)
        client.script_flush()  # as after a Redis restart: EVALSHA answers NOSCRIPT, the script is loaded again
        assert c.leaderboard.from_redis("o1", week) == before is not None
        client.script_flush()
        award(c, "C2", "o1")  # the award script too
        client.script_flush()
        status = c.projector.catch_up()  # a batch (one pipeline of EVALSHAs) meets NOSCRIPT: loaded, sent again
        assert status.ok and status.applied >= 2, status
        assert check(c.db, c.boards).clean
    finally:
        server.kill()
        server.wait()


def test_the_profile_layout_round_trips() -> None:
    p = scores.profile_of("o1", "欧阳娜娜", None, None, True, False)
    assert p.name == "欧**娜" and p.district == ""
    assert scores.profile_from_fields("o1", scores.profile_fields(p)) == p
    assert scores.profile_of("o2", None, "13800001234", "城关区", False, True).name == "138****1234"
    assert scores.profile_from_fields("o1", {"el": "1", "d": ""}) is None
