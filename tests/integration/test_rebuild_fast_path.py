"""The rebuild's fast path writes exactly what the reference fold writes: fold_row and the packed HSET against
scores.fold/summary_fields/profile_fields/placed and hiredis.pack_command, the psycopg stream against
stream_ledger, and a whole rebuild key by key (field order included) against the reference, on PostgreSQL and
SQLite with real Redis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fakeredis
import hiredis
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, update

from rewards.bootstrap import Container
from rewards.cases.models import Citizen
from rewards.clock import FixedClock
from rewards.leaderboard import keys, scores
from rewards.leaderboard import rebuild as rebuild_module
from rewards.leaderboard.boards import Boards
from rewards.leaderboard.rebuild import (
    SummaryPacker,
    fold_row,
    read_replies,
    rebuild,
    send_pipelined,
    stream_ledger,
    stream_rows,
)
from rewards.scoring.model import EntryFacts
from tests.conftest import RUN_ID, START, MakeContainer, wipe
from tests.integration.test_check_rebuild import seed
from tests.integration.test_leaderboard_boards import Profile, ledgers

WEEKS = ["2026-W01", "2026-W53", "2027-W01", "at"]  # "at" as a week folds into the all-time scope twice
DISTRICTS = ["", "城关区", "七里河区", "a b"]
NAMES = ["张*明", "*", "匿名市民", "138****1234", "Ünï 😀"]

lines_st = st.lists(
    st.tuples(
        st.integers(1, 40),  # entry ids: duplicates are folded once
        st.integers(-5, 9),
        st.sampled_from(WEEKS),
        st.integers(0, scores.MAX_TICK),
    ),
    max_size=6,
)
profile_st = st.none() | st.tuples(st.sampled_from(NAMES), st.booleans())


def reference(
    district: str, eligible: bool, profile: tuple[str, bool] | None, lines: list[tuple[int, int, str, int]]
) -> tuple[list[tuple[str, str]], list[tuple[str, int, int]]]:
    """What the reference fold gives: the summary's fields in order, and its scopes."""
    summary = scores.fold(
        [scores.Line(e, p, w, scores.instant_of(t)) for e, p, w, t in lines], district or None, eligible
    )
    fields = scores.summary_fields(summary)
    if profile is not None:
        fields.update(scores.profile_fields(scores.Profile("o", profile[0], district, eligible, profile[1])))
    return list(fields.items()), [(s, p, summary.reached[s]) for s, p in summary.points.items()]


@given(st.sampled_from(DISTRICTS), st.booleans(), profile_st, lines_st)
def test_fold_row_is_the_reference_fold(
    district: str, eligible: bool, profile: tuple[str, bool] | None, lines: list[tuple[int, int, str, int]]
) -> None:
    fields, scopes = fold_row(district, eligible, profile, lines)
    want_fields, want_scopes = reference(district, eligible, profile, lines)
    assert list(zip(fields[0::2], fields[1::2], strict=True)) == want_fields
    assert scopes == want_scopes


@given(
    st.sampled_from(DISTRICTS),
    st.booleans(),
    st.tuples(st.text(min_size=1), st.booleans()),
    st.tuples(
        st.integers(1, 10**15), st.integers(-(10**6), 10**6), st.sampled_from(WEEKS[:3]), st.integers(0, 2**32 - 1)
    ),
    st.integers(1, keys.MAX_CITIZEN_ID),
    st.sampled_from(["p", "{a:lb}:7:", "前缀"]),
)
def test_the_packed_summary_is_what_hiredis_packs(
    district: str,
    eligible: bool,
    profile: tuple[str, bool],
    line: tuple[int, int, str, int],
    cid: int,
    prefix: str,
) -> None:
    m = keys.member(cid)
    fields, _ = fold_row(district, eligible, profile, [line])
    packed = SummaryPacker(prefix).one_line(m, district, eligible, line, *profile)
    assert packed == hiredis.pack_command(("HSET", prefix + m, *fields))


def test_out_of_range_instants_are_refused() -> None:
    for tick in (-1, scores.MAX_TICK + 1):
        with pytest.raises(scores.ScoreOverflow, match="outside"):
            fold_row("", True, None, [(1, 1, "2026-W01", tick), (2, 1, "2026-W01", 0)])


def test_prepacked_commands_read_every_reply(redis_server: redis.Redis) -> None:
    """Packed bytes and tuples mix in one round trip; an error reply in the middle is raised after the rest are
    read, and a client that is not a plain connection refuses bytes rather than send them wrongly."""
    p = f"t{RUN_ID}pp:"
    redis_server.set(p + "str", "v")
    chunk: list[tuple[Any, ...] | bytes] = [
        hiredis.pack_command(("HSET", p + "h", "a", "城关区")),
        ("ZADD", p + "str", -1, "m"),
        hiredis.pack_command(("ZADD", p + "z", -3, "m")),
    ]
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        send_pipelined(redis_server, chunk)
    assert redis_server.hgetall(p + "h") == {"a": "城关区"}
    assert redis_server.zscore(p + "z", "m") == -3
    assert redis_server.ping()  # in step: no reply left unread
    conn = redis_server.connection_pool.get_connection()
    try:
        conn.send_packed_command([hiredis.pack_command(("PING",)) * 3])  # type: ignore[no-untyped-call]
        assert read_replies(conn, 3) is None
    finally:
        redis_server.connection_pool.release(conn)
    redis_server.unlink(p + "str", p + "h", p + "z")
    emulated = fakeredis.FakeRedis(server=fakeredis.FakeServer(version=(7, 0)))
    with pytest.raises(TypeError, match="plain connection"):
        send_pipelined(emulated, [hiredis.pack_command(("PING",))])


def vary_profiles(c: Container) -> None:
    """Names and phones of every kind a mask handles (none, one character, a phone only, padded)."""
    shapes: list[tuple[str | None, str | None]] = [
        (None, None),
        ("张", None),
        (None, "138 0013 8000"),
        (" 李四 ", None),
    ]
    with c.uow() as uow:
        ids = sorted(uow.session.scalars(Citizen.__table__.select().with_only_columns(Citizen.id)))
        for cid, (name, phone) in zip(ids, shapes, strict=False):
            uow.session.execute(update(Citizen).where(Citizen.id == cid).values(name=name, phone=phone))


def expected_keys(c: Container, gen: int) -> dict[str, Any]:
    """Every key a rebuild writes, by the reference: summaries (fields in order), openids, boards, registry."""
    p = c.settings.leaderboard_key_prefix
    out: dict[str, Any] = {}
    openids: dict[str, str] = {}
    boards: dict[str, dict[str, int]] = {}
    updated: dict[str, int] = {}
    with c.read() as session:
        for citizen in stream_ledger(session):
            summary = scores.fold(citizen.lines, citizen.district, citizen.eligible)
            fields = scores.summary_fields(summary)
            assert citizen.profile is not None
            fields.update(scores.profile_fields(citizen.profile))
            openids[citizen.profile.openid] = keys.member(citizen.citizen_id)
            out[keys.summary_key(p, gen, citizen.citizen_id)] = list(fields.items())
            for name, score, tick in scores.placed(summary):
                boards.setdefault(name, {})[keys.member(citizen.citizen_id)] = score
                updated[name] = max(updated.get(name, -1), tick)
    out[keys.openids_key(p, gen)] = sorted(openids.items())
    for name, members in boards.items():
        out[keys.board_key(p, gen, name)] = sorted((m, float(s)) for m, s in members.items())
    out[keys.registry_key(p, gen)] = [(name, str(tick)) for name, tick in updated.items()]
    return out


def written_keys(c: Container, gen: int, names: list[str]) -> dict[str, Any]:
    r, out = c.redis, {}
    for key in names:
        kind = r.type(key)
        if key.endswith(":oid"):
            out[key] = sorted(r.hgetall(key).items())
        elif kind == "hash":
            out[key] = list(r.hgetall(key).items())  # a small hash answers in the order its fields were written
        elif kind == "zset":
            out[key] = sorted(r.zrange(key, 0, -1, withscores=True))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ledgers(citizens=(1, 12), lines=(0, 40)))
def test_a_rebuild_writes_what_the_reference_fold_writes(per_example, ledger) -> None:  # type: ignore[no-untyped-def]
    entries, finals = ledger
    c: Container = per_example()
    seed(c, entries, finals)
    vary_profiles(c)
    with c.read() as session:  # the psycopg stream (on PostgreSQL) yields what stream_ledger yields
        rows = list(stream_rows(session))
        ledger_rows = [
            (x.citizen_id, x.district or "", x.eligible, x.profile and x.profile.openid, x.profile and x.profile.name,
             x.profile and x.profile.banned, [(e.entry_id, e.points, e.week, scores.tick_of(e.created_at))
                                              for e in x.lines])
            for x in stream_ledger(session)
        ]  # fmt: skip
    assert rows == ledger_rows
    report = rebuild(c.db, c.boards)
    want = expected_keys(c, report.generation)
    p = c.settings.leaderboard_key_prefix
    present = [k for k in c.redis.scan_iter(match=keys.generation_pattern(p, report.generation), count=1000)]
    got = written_keys(c, report.generation, present)
    assert got == {k: v for k, v in want.items() if v}  # nothing missing, nothing more (an empty key is no key)
    assert Boards(c.redis, c.settings).generation(fresh=True) == report.generation


def test_timestamps_truncate_to_the_second_as_the_reference_does(
    pg_engine: Engine, make_container: MakeContainer
) -> None:
    """The server computes the tick (PostgreSQL): sub-second instants and the edges of the range agree."""
    wipe(pg_engine)
    c = make_container(engine=pg_engine, clock=FixedClock(START))
    instants = [datetime(2020, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)]
    instants += [datetime(2027, 1, 3, 15, 59, 58, 500_000, tzinfo=UTC)]
    entries = [EntryFacts(i + 1, 1, None, 1, "2026-W53", at) for i, at in enumerate(instants)]
    seed(c, entries, {1: Profile(None, True)})
    with c.read() as session:
        (row,) = list(stream_rows(session))
    assert [line[3] for line in row[6]] == [scores.tick_of(at) for at in instants]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ledgers(citizens=(1, 12), lines=(0, 40)))
def test_every_board_is_written_in_descending_score_order(per_example, ledger) -> None:  # type: ignore[no-untyped-def]
    """Redis inserts a member next to the one before when members come in score order (rebuild.Placements): with
    one chunk in flight the ZADDs reach Redis in the order sent, and each board's scores never rise. Small chunks
    and commands make a board span many."""
    entries, finals = ledger
    c: Container = per_example()
    seed(c, entries, finals)
    sent: list[tuple[Any, ...]] = []
    original = rebuild_module.send_pipelined

    def recording(client: redis.Redis, commands: Any) -> None:
        sent.extend(cmd for cmd in commands if isinstance(cmd, tuple) and cmd[0] == "ZADD")
        original(client, commands)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rebuild_module, "send_pipelined", recording)
        patch.setattr(rebuild_module, "IN_FLIGHT", 1)
        patch.setattr(rebuild_module, "PLACEMENTS_CHUNK", 5)
        patch.setattr(rebuild_module, "PAIRS", 2)
        report = rebuild(c.db, c.boards)
    scores_of: dict[str, list[int]] = {}
    assert all(len(command) <= 2 + 2 * 2 for command in sent)  # PAIRS members a command at most
    for command in sent:
        scores_of.setdefault(command[1], []).extend(command[2::2])
    assert sum(map(len, scores_of.values())) == sum(c.redis.zcard(key) for key in scores_of)
    for key, written in scores_of.items():
        assert key.startswith(keys.base(c.settings.leaderboard_key_prefix, report.generation))
        assert written == sorted(written, reverse=True), key
