"""`check` and `rebuild` against the SQL ledger (PostgreSQL and SQLite) and real Redis: drift is reported, a rebuild
repairs it, losing Redis (flushed or killed) mid-stream of awards loses nothing."""

from __future__ import annotations

import itertools
import random
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine, select

from rewards.bootstrap import Container
from rewards.cases.commands import Actor, GiveVerdict, ReportCase, Reporter, VoidCase
from rewards.cases.models import Case, Citizen
from rewards.clock import FixedClock
from rewards.leaderboard import keys, scores
from rewards.leaderboard import rebuild as rebuild_module
from rewards.leaderboard.boards import Boards
from rewards.leaderboard.check import check
from rewards.leaderboard.rebuild import RebuildLeaseLost, RebuildRunning, rebuild, send_pipelined
from rewards.redis_client import make_redis
from rewards.scoring.ledger import LedgerEntry
from rewards.scoring.model import EntryFacts
from tests.conftest import RUN_ID, START, MakeContainer, flush_prefix, test_settings, unreachable
from tests.integration.test_leaderboard_boards import Profile, expected_boards, ledgers, redis_boards

ACTOR = Actor("validator-1", "console")


def award(c: Container, case_id: str, openid: str, *, district: str | None = "城关区", verified: bool = True) -> None:
    """Report a case and file it as valid: the real path (ledger row, then the boards after commit)."""
    reporter = Reporter(openid=openid, name=f"市民{openid}", district=district, verified=verified)
    with c.uow() as uow:
        c.flows.report(uow, ReportCase(case_id, "street_lamp", c.clock.now(), reporter), ACTOR)
    with c.uow() as uow:
        c.flows.verdict(uow, GiveVerdict(case_id, "valid"), ACTOR)


def void(c: Container, case_id: str) -> None:
    """Void a case (its points are reversed by a ledger entry dated now)."""
    with c.uow() as uow:
        c.flows.void(uow, VoidCase(case_id, "摆拍"), ACTOR)


def seed(c: Container, entries: list[EntryFacts], finals: dict[int, Profile]) -> None:
    """Write citizens, cases and ledger rows straight to SQL (fast, for property tests)."""
    with c.uow() as uow:
        s = uow.session
        for cid, p in finals.items():
            banned = not p.eligible and cid % 2 == 0  # ineligible: banned, or not verified
            s.add(
                Citizen(
                    id=cid,
                    openid=f"o{cid}",
                    name=f"市民{cid}号",
                    district=p.district,
                    verified=p.eligible or banned,
                    banned=banned,
                    snapshot_user=False,
                    created_at=START,
                    updated_at=START,
                )
            )
        s.flush()
        for e in entries:
            at = e.created_at
            s.add(
                Case(
                    id=e.entry_id,
                    case_id=f"C{e.entry_id}",
                    reporter_id=e.citizen_id,
                    category="street_lamp",
                    description="",
                    coord_system="wgs84",
                    photos=[],
                    status="filed",
                    status_at=at,
                    reported_at=at,
                    updated_at=at,
                )
            )
            rule = "valid_report" if e.points > 0 else "void_reversal"
            s.flush()  # the case row first: the ledger row refers to it
            s.add(
                LedgerEntry(
                    id=e.entry_id,
                    citizen_id=e.citizen_id,
                    case_pk=e.entry_id,
                    rule=rule,
                    points=e.points,
                    week=e.week,
                    reason="test",
                    created_at=at,
                )
            )


def model_from_sql(c: Container) -> tuple[list[EntryFacts], dict[int, Profile]]:
    """The ledger and the citizens' current profiles, read back from SQL."""
    with c.read() as s:
        citizens = {
            cid: Profile(d, v and not b)
            for cid, d, v, b in s.execute(select(Citizen.id, Citizen.district, Citizen.verified, Citizen.banned))
        }
        entries = [
            EntryFacts(e.id, e.citizen_id, None, e.points, e.week, e.created_at)
            for e in s.scalars(select(LedgerEntry).order_by(LedgerEntry.id))
        ]
    return entries, citizens


def assert_boards_equal_ledger(c: Container) -> None:
    entries, finals = model_from_sql(c)
    want = expected_boards(entries, finals)
    got = redis_boards(Boards(c.redis, c.settings))
    assert {n: [(s.citizen_id, s.points, scores.tick_of(s.reached_at)) for s in b] for n, b in want.items()} == got


CORRUPTIONS = ["drop_summary", "wrong_score", "stray_member", "missing_member", "replaced_member", "summary_points"]
CORRUPTIONS += ["citizen_name", "citizen_unmapped", "flush"]


def corrupt(c: Container, how: str, rnd: random.Random) -> str:
    """Damage Redis one way; return a word the check must mention."""
    b = Boards(c.redis, c.settings)
    gen, p = b.generation(fresh=True), c.settings.leaderboard_key_prefix
    names = sorted(n for n in c.redis.hkeys(keys.registry_key(p, gen)) if c.redis.zcard(keys.board_key(p, gen, n)))
    name = rnd.choice(names)
    board = keys.board_key(p, gen, name)
    member = rnd.choice(c.redis.zrange(board, 0, -1))
    cid = keys.citizen_of(member)
    if how == "drop_summary":
        c.redis.unlink(keys.summary_key(p, gen, cid))
        return f"summary of citizen {cid}"
    if how == "wrong_score":
        c.redis.zincrby(board, -(2**32), member)  # one point more than the ledger gives
        return f"board {name}: citizen {cid} has"
    if how == "stray_member":
        c.redis.zadd(board, {keys.member(999_999): -(2**32)})
        return f"board {name}: citizen 999999 should not be there"
    if how == "missing_member":
        c.redis.zrem(board, member)
        return f"board {name}: citizen {cid} is missing"
    if how == "replaced_member":  # same size, different set
        score = c.redis.zscore(board, member)
        c.redis.zrem(board, member)
        c.redis.zadd(board, {keys.member(999_998): score})
        return f"board {name}: citizen 999998 should not be there"
    if how == "citizen_name":  # what a standing shows of the citizen (kept beside the summary)
        c.redis.hset(keys.summary_key(p, gen, cid), "n", "假*名")
        return f"citizen data of citizen {cid}"
    if how == "citizen_unmapped":
        c.redis.hdel(keys.openids_key(p, gen), f"o{cid}")
        return f"citizen data of citizen {cid}: openid maps to None"
    if how == "summary_points":
        c.redis.hincrby(keys.summary_key(p, gen, cid), "p:at", 1)
        return f"summary of citizen {cid}, scope at"
    flush_prefix(c.redis, p)
    return "is missing"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ledgers(), st.sampled_from(CORRUPTIONS), st.randoms(use_true_random=False))
def test_rebuild_equals_the_ledger_and_check_finds_every_drift(per_example, ledger, how, rnd) -> None:  # type: ignore[no-untyped-def]
    entries, finals = ledger
    c: Container = per_example()
    seed(c, entries, finals)
    rebuild(c.db, c.boards)
    assert_boards_equal_ledger(c)
    assert check(c.db, c.boards).clean
    if not any(e.points for e in entries) or not expected_boards(*model_from_sql(c)):
        return
    mention = corrupt(c, how, rnd)
    report = check(c.db, c.boards)
    assert not report.clean
    assert any(mention in line for line in report.differences), report.differences
    rebuild(c.db, c.boards)
    assert check(c.db, c.boards).clean
    assert_boards_equal_ledger(c)


def test_awards_reach_the_boards_after_commit_and_check_is_clean(container: Container) -> None:
    for i in range(12):
        award(container, f"C{i}", f"o{i % 5}", district=["城关区", "七里河区"][i % 2], verified=i % 5 != 3)
        container.clock.advance(seconds=1)  # type: ignore[attr-defined]
    void(container, "C4")
    assert check(container.db, container.boards).clean
    assert_boards_equal_ledger(container)


def test_flushing_redis_mid_stream_loses_nothing(container: Container) -> None:
    for i in range(30):
        award(container, f"C{i}", f"o{i % 7}")
        container.clock.advance(seconds=1)  # type: ignore[attr-defined]
        if i == 14:
            flush_prefix(container.redis, container.settings.leaderboard_key_prefix)  # Redis lost everything
        if i == 20:
            void(container, "C3")
    report = check(container.db, container.boards)
    assert not report.clean and any("is missing" in d or "not applied" in d for d in report.differences)
    rebuild(container.db, container.boards)
    assert check(container.db, container.boards).clean
    assert_boards_equal_ledger(container)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(port: int) -> subprocess.Popen[bytes]:
    """A private, non-persistent redis-server we may kill."""
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = redis.Redis(port=port)
    for _ in range(100):
        try:
            probe.ping()
            return proc
        except redis.ConnectionError:
            time.sleep(0.05)
    proc.kill()
    unreachable("a private redis-server", RuntimeError("it did not answer PING within 5 s"))  # fails under CI=true
    raise AssertionError("unreachable")


def test_killing_redis_mid_stream_loses_nothing(
    db_engine: Engine, clock: FixedClock, make_container: MakeContainer
) -> None:
    port = free_port()
    server = start_redis(port)
    # no client-side retries with back-off: a dead server fails each after-commit effect at once
    client = redis.Redis(port=port, decode_responses=True, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    c = make_container(engine=db_engine, redis_client=client)
    try:
        for i in range(24):
            if i == 10:
                server.kill()  # SIGKILL: no goodbye, nothing persisted
                server.wait()
            if i == 16:
                server = start_redis(port)  # back, empty
            award(c, f"C{i}", f"o{i % 6}")  # the ledger commits even while Redis is gone
            clock.advance(seconds=1)
        with c.read() as s:
            assert len(s.scalars(select(LedgerEntry)).all()) == 24
        report = check(c.db, c.boards)
        assert not report.clean
        rebuild(c.db, c.boards)
        assert check(c.db, c.boards).clean
        assert_boards_equal_ledger(c)
    finally:
        server.kill()
        server.wait()


def test_entries_committed_during_a_rebuild_are_not_lost(container: Container) -> None:
    for i in range(10):
        award(container, f"C{i}", f"o{i % 4}")
        container.clock.advance(seconds=1)  # type: ignore[attr-defined]
    seen: list[int] = []
    boards = Boards(container.redis, container.settings)
    before = boards.page("at", 0, 50).rows

    def during(done: int, total: int) -> None:
        seen.append(done)
        if len(seen) == 1:  # while the new generation is being written, awards and a void commit
            assert boards.page("at", 0, 50).rows == before  # readers keep the old boards, whole, until the swap
            award(container, "LATE1", "o1")
            award(container, "LATE2", "o9")
            void(container, "C2")

    report = rebuild(container.db, container.boards, progress=during)
    assert report.caught_up >= 3
    assert check(container.db, container.boards).clean
    assert_boards_equal_ledger(container)


def test_rebuild_progress_counts_the_entries_then_the_placements(container: Container) -> None:
    """The bar moves while the ledger streams, then while the boards are written (in score order, after the
    stream): its total grows by the placements once they are known, and it ends full."""
    for i in range(6):
        award(container, f"C{i}", f"o{i % 4}")
    seen: list[tuple[int, int]] = []
    report = rebuild(container.db, container.boards, progress=lambda done, total: seen.append((done, total)))
    placements = 2 * 4  # four citizens, each on the all-time board and this week's
    assert seen[0][0] == report.entries  # one chunk of citizens at this size, then the boards
    assert seen[-1] == (report.entries + placements, report.entries + placements)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(seen))


def test_rebuild_swaps_generations_and_frees_the_old_one(container: Container) -> None:
    award(container, "C1", "o1")
    p = container.settings.leaderboard_key_prefix
    first = rebuild(container.db, container.boards)
    second = rebuild(container.db, container.boards)
    assert second.previous == first.generation and second.generation > first.generation
    stale = list(container.redis.scan_iter(match=keys.generation_pattern(p, first.generation)))
    assert stale == []
    assert Boards(container.redis, container.settings).page("at", 0, 5).rows[0].points == 1


def test_an_abandoned_shadow_generation_is_freed(container: Container) -> None:
    award(container, "C1", "o1")
    p = container.settings.leaderboard_key_prefix
    container.redis.set(keys.shadow_key(p), 99)
    container.redis.zadd(keys.board_key(p, 99, "at"), {keys.member(1): -(2**32)})
    rebuild(container.db, container.boards)
    assert not container.redis.exists(keys.board_key(p, 99, "at"))


def test_a_rebuild_that_fails_writing_its_boards_swaps_nothing(
    container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The boards are written after the ledger has streamed: a failure there raises, the old generation keeps
    serving whole, the lease is released, and the next rebuild frees the half-written generation."""
    award(container, "C1", "o1")
    p = container.settings.leaderboard_key_prefix
    first = rebuild(container.db, container.boards)
    award(container, "C2", "o2")
    before = Boards(container.redis, container.settings).page("at", 0, 5).rows
    original = rebuild_module.send_pipelined

    def failing_boards(client: redis.Redis, commands: Any) -> None:
        if any(isinstance(command, tuple) and command[0] == "ZADD" for command in commands):
            raise redis.ConnectionError("Redis went away while the boards were written")
        original(client, commands)

    monkeypatch.setattr(rebuild_module, "send_pipelined", failing_boards)
    with pytest.raises(redis.ConnectionError, match="boards were written"):
        rebuild(container.db, container.boards)
    half = int(container.redis.get(keys.shadow_key(p)))
    assert half > first.generation
    assert container.redis.exists(keys.summary_key(p, half, 1))  # the summaries were written, then it failed
    assert Boards(container.redis, container.settings).generation(fresh=True) == first.generation
    assert Boards(container.redis, container.settings).page("at", 0, 5).rows == before
    assert not container.redis.exists(keys.lock_key(p))
    monkeypatch.setattr(rebuild_module, "send_pipelined", original)
    report = rebuild(container.db, container.boards)
    assert list(container.redis.scan_iter(match=keys.generation_pattern(p, half))) == []
    assert [row.points for row in Boards(container.redis, container.settings).page("at", 0, 5).rows] == [1, 1]
    assert report.generation > half


def test_a_rebuild_whose_lease_was_lost_stops_before_its_swap(container: Container) -> None:
    """A lease that expired while the rebuild ran (another rebuild may hold it now, and would free this one's
    generation as abandoned) stops the rebuild before its swap: the old boards keep serving."""
    award(container, "C1", "o1")
    p = container.settings.leaderboard_key_prefix
    first = rebuild(container.db, container.boards)
    award(container, "C2", "o2")
    before = Boards(container.redis, container.settings).page("at", 0, 5).rows

    def taken(done: int, total: int) -> None:
        container.redis.set(keys.lock_key(p), "another-rebuild", px=60_000)

    with pytest.raises(RebuildLeaseLost, match="expired"):
        rebuild(container.db, container.boards, progress=taken)
    assert Boards(container.redis, container.settings).generation(fresh=True) == first.generation
    assert Boards(container.redis, container.settings).page("at", 0, 5).rows == before
    assert container.redis.get(keys.lock_key(p)) == "another-rebuild"  # never released: it is not ours
    container.redis.delete(keys.lock_key(p))
    assert rebuild(container.db, container.boards).previous == first.generation


def test_one_rebuild_at_a_time(container: Container) -> None:
    p = container.settings.leaderboard_key_prefix
    container.redis.set(keys.lock_key(p), "someone-else", px=60_000)
    with pytest.raises(RebuildRunning):
        rebuild(container.db, container.boards)
    container.redis.delete(keys.lock_key(p))
    rebuild(container.db, container.boards)
    assert not container.redis.exists(keys.lock_key(p))  # released


def test_week_boundary_at_year_end_through_the_flows(container: Container) -> None:
    clock: FixedClock = container.clock  # type: ignore[assignment]
    clock.set(datetime(2027, 1, 3, 15, 59, 59, tzinfo=UTC))  # Sunday 23:59:59 in Shanghai: 2026-W53
    award(container, "Y1", "o1")
    clock.advance(seconds=1)  # Monday 00:00: 2027-W01
    award(container, "Y2", "o2")
    clock.advance(days=1)
    void(container, "Y1")  # reversal lands in 2027-W01: o1's week total is -1 there
    b = Boards(container.redis, container.settings)
    assert [r.citizen_id for r in b.page("w:2026-W53", 0, 5).rows] == [1]
    assert [r.citizen_id for r in b.page("w:2027-W01", 0, 5).rows] == [2]
    assert b.standing(1, "2027-W01", 80).week_points == -1
    assert check(container.db, container.boards).clean
    rebuild(container.db, container.boards)
    assert_boards_equal_ledger(container)


def test_send_pipelined_reads_every_reply_and_raises_the_first_error(redis_server: redis.Redis, tmp_path: Path) -> None:
    """A chunk whose middle command fails still applies the others, raises that error, and the connection stays in
    step: over TCP and over the embedded redis-server's unix socket (bench/e2e.py's rebuild fix packs chunks with
    hiredis), and through the plain pipeline a client that is not a plain connection takes (fakeredis)."""
    embedded = make_redis(test_settings(redis_url=None, data_dir=tmp_path / "var"))
    assert embedded.connection_pool.connection_class is redis.UnixDomainSocketConnection
    emulated = fakeredis.FakeRedis(decode_responses=True, server=fakeredis.FakeServer(version=(7, 0)))
    for client, p in ((redis_server, f"t{RUN_ID}sp:"), (embedded, ""), (emulated, "")):
        client.set(p + "str", "v")
        chunk = [("HSET", p + "h", "a", "1", "b", "城关区"), ("ZADD", p + "str", -5, "m"), ("ZADD", p + "z", -7, "m")]
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            send_pipelined(client, chunk)
        assert client.hgetall(p + "h") == {"a": "1", "b": "城关区"}
        assert client.zscore(p + "z", "m") == -7
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):  # its own reply, not one left unread before
            send_pipelined(client, [("ZADD", p + "str", -1, "n")])
        send_pipelined(client, [("ZADD", p + "z", -(2**53) + 1, "n")])
        assert client.zrange(p + "z", 0, -1, withscores=True) == [("n", -(2**53) + 1), ("m", -7)]
        client.unlink(p + "str", p + "h", p + "z")
