"""The fault suite: the real service in subprocesses (uvicorn running `rewards.asgi:app_factory`, as `rewards serve`
does) against its own redis-server and this run's private PostgreSQL database, faults injected from outside.

(a) PostgreSQL commits but the reply is lost (a protocol-aware proxy drops the connection after the COMMIT);
(b) Redis killed and restarted empty, then flushed; (c) the service crashes and restarts while Redis is
unreachable; (d) Redis hung (SIGSTOP); (e) two workers under a burst of verdicts while Redis is flushed.

Each asserts: no point lost or doubled (the ledger against the awards made, each citizen's fresh standing against
the ledger), `rewards check` exits 0 within a bound after the fault clears with no manual command, and no standing
read during or after the fault shows wrong points as fresh. Times are measured and printed (`-s`), never asserted.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
import xmltodict
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from rewards.cases.models import Citizen
from rewards.config import load_settings
from rewards.db import Database, make_engine
from rewards.leaderboard.boards import Boards
from rewards.leaderboard.check import check
from rewards.scoring.ledger import LedgerEntry
from tests.conftest import wipe
from tests.fakes.pg_proxy import PgCommitDropper
from tests.fakes.processes import RedisServer, RewardsService, rewards_command
from tests.fakes.standing_oracle import StandingWatcher, Timeline, Verdicts
from tests.fakes.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

TOKEN = "fault-suite-validator-token"
WECHAT_TOKEN = "fault-suite-wechat-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONVERGE_BOUND = 30.0  # seconds after a fault clears by which `rewards check` must exit 0
RANK_TEXT = """<xml><ToUserName><![CDATA[toUser]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>
<CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[排名]]></Content>
<MsgId>{msg_id}</MsgId></xml>"""

RESULTS: list[tuple[str, str, str, str]] = []  # fault, what clients saw, points lost/doubled, time to converge


# --- the private database ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fault_db(pg_url: str) -> Iterator[str]:
    """This run's private PostgreSQL database (created and migrated by conftest, dropped at the end of the run);
    each scenario wipes it. The table of results is printed once the module is done."""
    yield pg_url
    print_results()


def print_results() -> None:
    """The closing table (seen with `pytest -s`)."""
    if not RESULTS:
        return
    print("\n| fault | what clients saw | points lost / doubled | time to converge |")
    print("|---|---|---|---|")
    for row in RESULTS:
        print("| " + " | ".join(row) + " |")
    print(f"(load average when done: {', '.join(f'{x:.1f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs)")


# --- the rig: one scenario's servers, client and bookkeeping ------------------------------------------------------
@dataclass
class Rig:
    """A scenario's own redis-server, key prefix and service, an HTTP client, and the award timeline."""

    tmp: Path
    db_url: str
    redis: RedisServer
    prefix: str = field(default_factory=lambda: f"fs{uuid.uuid4().hex[:8]}")
    service: RewardsService | None = None
    timeline: Timeline = field(default_factory=Timeline)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(headers=AUTH, timeout=60))
    cases: int = 0
    checker: tuple[Database, Boards] | None = None  # this process's view for the convergence check

    def env(
        self, database_url: str | None = None, redis_url: str | None = None, extra: dict[str, str] | None = None
    ) -> dict[str, str]:
        """REWARDS_* of the service (and of `rewards check`, with the direct URLs)."""
        return (extra or {}) | {
            "REWARDS_DATABASE_URL": database_url or self.db_url,
            "REWARDS_REDIS_URL": redis_url or self.redis.url,
            "REWARDS_LEADERBOARD_KEY_PREFIX": self.prefix,
            "REWARDS_PROJECTOR_INTERVAL_SECONDS": "1",
            "REWARDS_API_TOKENS": json.dumps({TOKEN: {"name": "fault-validator", "role": "validator"}}),
            "REWARDS_INTAKE_SECRET": "fault-suite-intake-secret",
            "REWARDS_SESSION_SECRET": "fault-suite-session-secret",
            "REWARDS_WECHAT_TOKEN": WECHAT_TOKEN,
            "REWARDS_DATA_DIR": str(self.tmp / "var"),
            "REWARDS_OUTBOX_DIR": str(self.tmp / "outbox"),
            "REWARDS_RATE_LIMIT_PER_IP": str(10**9),  # the suite polls hard from one address
            "REWARDS_RATE_LIMIT_PER_CITIZEN": str(10**9),
        }

    def serve(
        self,
        workers: int = 1,
        database_url: str | None = None,
        redis_url: str | None = None,
        via_cli: bool = False,
        extra: dict[str, str] | None = None,
    ) -> str:
        """Start (or restart) the service; return its base URL."""
        if self.service is None:
            env = self.env(database_url, redis_url, extra)
            self.service = RewardsService(env, self.tmp / "service.log", workers, via_cli)
        else:
            self.service.start()
        return self.service.base_url

    @property
    def url(self) -> str:
        assert self.service is not None
        return self.service.base_url

    # -- cases and awards ------------------------------------------------------------------------------------
    def report(self, openids: list[str], count: int) -> dict[str, list[str]]:
        """Report `count` cases by each citizen (from 4 clients at once); return their ids by citizen."""
        ids = {o: [f"FS-{self.cases + i * count + k + 1:05d}" for k in range(count)] for i, o in enumerate(openids)}
        self.cases += len(openids) * count
        jobs = [(o, case_id) for o in openids for case_id in ids[o]]
        clients = [httpx.Client(headers=AUTH, timeout=60) for _ in range(4)]
        try:
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(self._report_one, jobs, [clients[i % 4] for i in range(len(jobs))]))
        finally:
            for client in clients:
                client.close()
        return ids

    def _report_one(self, job: tuple[str, str], http: httpx.Client) -> None:
        reporter = {"openid": job[0], "name": "王小明", "verified": True}
        body = {"case_id": job[1], "category": "street_lamp", "reporter": reporter}
        r = http.post(f"{self.url}/api/v1/cases", json=body)
        assert r.status_code == 201, r.text

    def verdict(self, case_id: str, http: httpx.Client | None = None) -> tuple[httpx.Response, float]:
        """File a case as valid; return the response and its latency (s)."""
        start = time.perf_counter()
        r = (http or self.http).post(f"{self.url}/api/v1/cases/{case_id}/verdict", json={"verdict": "valid"})
        return r, time.perf_counter() - start

    def award(self, openid: str, case_id: str, http: httpx.Client | None = None) -> float:
        """File a case as valid (one point); assert it committed; return the latency (s)."""
        award = self.timeline.sent(openid, case_id)
        r, took = self.verdict(case_id, http)
        assert r.status_code == 200 and r.json()["status"] == "filed", r.text
        self.timeline.committed(award)
        return took

    def watch(self, openids: list[str]) -> StandingWatcher:
        """Poll these citizens' standings from now on."""
        return StandingWatcher(self.url, AUTH, openids).start()

    # -- convergence and the books ---------------------------------------------------------------------------
    def boards_match(self) -> bool:
        """Does Redis equal the ledger right now (the check `rewards check` runs, from this process)?"""
        db, boards = self._checker()
        try:
            return check(db, boards).clean
        except redis.RedisError:
            boards.redis.connection_pool.disconnect()
            return False

    def _checker(self) -> tuple[Database, Boards]:
        if self.checker is None:
            settings = load_settings(redis_url=self.redis.url, leaderboard_key_prefix=self.prefix)
            client = redis.Redis.from_url(self.redis.url, decode_responses=True, socket_timeout=2)
            self.checker = Database(make_engine(self.db_url, pool_size=1, max_overflow=0)), Boards(client, settings)
        return self.checker

    def converge(self, since: float) -> float:
        """Wait (bounded) until the boards equal the ledger by themselves (the comparison `rewards check` makes, run
        here every 0.1 s); return the seconds since the fault cleared."""
        deadline = since + CONVERGE_BOUND
        while not self.boards_match():
            assert time.monotonic() < deadline, f"boards did not converge in {CONVERGE_BOUND} s"
            time.sleep(0.1)
        return time.monotonic() - since

    def rewards_check(self) -> None:
        """`rewards check` as an operator runs it: exit 0 (no manual rebuild was run)."""
        done = rewards_command(self.env(), "check")
        assert done.returncode == 0, done.stdout + done.stderr

    def ledger_points(self) -> dict[str, int]:
        """Each citizen's ledger total, read straight from PostgreSQL."""
        engine = make_engine(self.db_url, pool_size=1, max_overflow=0)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(Citizen.openid, func.coalesce(func.sum(LedgerEntry.points), 0))
                    .join(LedgerEntry, LedgerEntry.citizen_id == Citizen.id, isouter=True)
                    .group_by(Citizen.openid)
                ).all()
            return {openid: int(points) for openid, points in rows}
        finally:
            engine.dispose()

    def fresh_points(self, openid: str) -> int:
        """A citizen's all-time points from a fresh (stale: false) standing, waiting (bounded) for one."""
        deadline = time.monotonic() + 15
        while True:
            r = self.http.get(f"{self.url}/api/v1/citizens/{openid}/standing")
            assert r.status_code == 200, r.text
            if not r.json()["stale"]:
                return int(r.json()["all_time"]["points"])
            assert time.monotonic() < deadline, "standings stayed stale after the boards converged"
            time.sleep(0.2)

    def books(self) -> tuple[int, int]:
        """Assert and return (lost, doubled) points: the ledger against the awards made, the boards against both."""
        ledger = self.ledger_points()
        lost = doubled = 0
        for openid in self.timeline.awards:
            expected = self.timeline.expected(openid)
            lost += max(0, expected - ledger.get(openid, 0))
            doubled += max(0, ledger.get(openid, 0) - expected)
            board = self.fresh_points(openid)
            lost += max(0, ledger.get(openid, 0) - board)
            doubled += max(0, board - ledger.get(openid, 0))
        return lost, doubled

    def close(self) -> None:
        if self.service is not None:
            self.service.stop()
        self.http.close()
        if self.checker is not None:
            self.checker[0].close()
            self.checker[1].redis.close()
        self.redis.close()


@pytest.fixture
def rig(fault_db: str, tmp_path: Path) -> Iterator[Rig]:
    """A wiped database, a fresh redis-server, a private key prefix; the service is started by the test."""
    engine = make_engine(fault_db)
    wipe(engine)
    engine.dispose()
    r = Rig(tmp_path, fault_db, RedisServer(tmp_path))
    yield r
    r.close()
    if r.service is not None:
        print(f"\n--- service log (tail) ---\n{r.service.log_tail(1500)}")


def citizens(n: int, tag: str) -> list[str]:
    return [f"o-{tag}-{i}" for i in range(n)]


def judged(watcher: StandingWatcher, timeline: Timeline) -> Verdicts:
    """Stop the watcher, judge its answers, assert none was wrong (fresh or stale) and none failed."""
    watcher.stop()
    v = watcher.judge(timeline)
    wrong = [timeline.explain(a) for a in v.wrong_fresh + v.wrong_stale]
    assert wrong == [], f"{len(v.wrong_fresh)} stale answers marked fresh, {len(v.wrong_stale)} wrong stale ones"
    assert v.errors == [], f"standings that failed: {v.errors[:5]}"
    assert v.answers > 0
    return v


def seen(v: Verdicts) -> str:
    return f"standing: {v.answers} answers, {v.stale} stale, 0 stale-marked-fresh"


def record(fault: str, clients: str, lost: int, doubled: int, converge: str) -> None:
    RESULTS.append((fault, clients, f"{lost} / {doubled}", converge))
    print(f"\n[fault-suite] {fault}: {clients}; lost {lost}, doubled {doubled}; converged {converge}")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- (a) PostgreSQL committed, the reply was lost ----------------------------------------------------------------
def test_lost_commit_reply_converges_by_itself(rig: Rig) -> None:
    url = make_url(rig.db_url)
    proxy = PgCommitDropper(url.host or "127.0.0.1", url.port or 5432)
    try:
        via_proxy = url.set(host="127.0.0.1", port=proxy.port, query={"sslmode": "disable"})
        rig.serve(database_url=via_proxy.render_as_string(hide_password=False))
        people = citizens(3, "a")
        cases = rig.report(people, 6)
        for o in people:
            rig.award(o, cases[o].pop())
        watcher = rig.watch(people)
        time.sleep(0.3)
        outcomes, cleared, took = [], 0.0, []
        for i, o in enumerate(people):
            proxy.drop_next_commit()
            award = rig.timeline.sent(o, cases[o].pop())
            r, _ = rig.verdict(award.case_id)
            assert proxy.wait_dropped(i + 1, 5), "the proxy saw no ledger COMMIT to drop"
            rig.timeline.committed(award)  # PostgreSQL acknowledged the COMMIT before the proxy dropped the reply
            assert r.status_code == 503, r.text
            outcomes.append(r.status_code)
            retry, _ = rig.verdict(award.case_id)  # the client retries: a no-op, the award exists
            assert retry.status_code == 200 and retry.json()["status"] == "filed", retry.text
            cleared = time.monotonic()
            took.append(rig.converge(cleared))
            rig.award(people[(i + 1) % len(people)], cases[people[(i + 1) % len(people)]].pop())
        time.sleep(1.0)
        v = judged(watcher, rig.timeline)
        rig.rewards_check()
        lost, doubled = rig.books()
        assert (lost, doubled) == (0, 0)
        record(
            "(a) PostgreSQL commits, reply lost (3×)",
            f"verdict 503 then 200 on retry (no-op); {seen(v)}",
            lost,
            doubled,
            f"{max(took):.1f} s (each: {', '.join(f'{t:.1f}' for t in took)})",
        )
    finally:
        proxy.close()


# --- (b) Redis restarted empty, then flushed ---------------------------------------------------------------------
def test_redis_restarted_empty_and_flushed_boards_rebuild_by_themselves(rig: Rig) -> None:
    rig.serve()
    people = citizens(4, "b")
    cases = rig.report(people, 8)
    for o in people:
        rig.award(o, cases[o].pop())
    rig.converge(time.monotonic())
    watcher = rig.watch(people)
    rig.redis.kill()
    down = [rig.award(o, cases[o].pop()) for o in people]  # the ledger commits while Redis is gone
    rig.redis.start()  # empty
    restarted = time.monotonic()
    after = [rig.award(o, cases[o].pop()) for o in people[:2]]
    took_restart = rig.converge(restarted)
    rig.redis.flushall()
    flushed = time.monotonic()
    rig.award(people[3], cases[people[3]].pop())
    took_flush = rig.converge(flushed)
    time.sleep(0.5)
    v = judged(watcher, rig.timeline)
    assert v.stale > 0  # the boards were gone for a while: the standings said so
    rig.rewards_check()
    lost, doubled = rig.books()
    assert (lost, doubled) == (0, 0)
    record(
        "(b) Redis SIGKILLed, restarted empty",
        f"verdicts 200 throughout ({len(down)} while down, {len(after)} after); {seen(v)}",
        lost,
        doubled,
        f"{took_restart:.1f} s after the restart",
    )
    record("(b') Redis FLUSHALL", "verdicts 200; standings stale until rebuilt", lost, doubled, f"{took_flush:.1f} s")


# --- (c) the service restarted while Redis was unreachable -------------------------------------------------------
def test_service_restarted_while_redis_unreachable_awards_reach_the_boards(rig: Rig) -> None:
    proxy = TcpProxy("127.0.0.1", rig.redis.port)
    try:
        rig.serve(redis_url=f"redis://127.0.0.1:{proxy.port}/0")
        people = citizens(3, "c")
        cases = rig.report(people, 8)
        for o in people:
            rig.award(o, cases[o].pop())
        rig.converge(time.monotonic())
        watcher = rig.watch(people)
        proxy.cut()  # Redis unreachable
        before = [rig.award(o, cases[o].pop()) for o in people for _ in range(2)]
        assert rig.service is not None
        rig.service.kill()  # a crash: whatever the process held in memory is gone
        watcher.retarget(rig.serve())  # restarted while Redis is still unreachable
        after = [rig.award(o, cases[o].pop()) for o in people]
        time.sleep(1.5)  # a few projector passes fail meanwhile
        proxy.restore()
        back = time.monotonic()
        took = rig.converge(back)
        time.sleep(0.5)
        v = judged(watcher, rig.timeline)
        assert v.stale > 0
        rig.rewards_check()
        lost, doubled = rig.books()
        assert (lost, doubled) == (0, 0)
        record(
            "(c) service SIGKILLed and restarted while Redis unreachable",
            f"verdicts 200 ({len(before)} before the crash, {len(after)} after the restart); {seen(v)}",
            lost,
            doubled,
            f"{took:.1f} s after Redis came back",
        )
    finally:
        proxy.close()


# --- (d) Redis hung ----------------------------------------------------------------------------------------------
def signed_rank(rig: Rig, openid: str) -> tuple[str, float]:
    """Ask for one's rank in WeChat ("排名"), signed as WeChat signs; return the reply text and the latency (s)."""
    nonce, ts = uuid.uuid4().hex[:10], str(int(time.time()))
    signature = hashlib.sha1("".join(sorted([WECHAT_TOKEN, ts, nonce])).encode()).hexdigest()
    body = RANK_TEXT.format(openid=openid, msg_id=random.randrange(10**15, 10**16))
    start = time.perf_counter()
    r = rig.http.post(
        f"{rig.url}/wechat/callback",
        params={"signature": signature, "timestamp": ts, "nonce": nonce},
        content=body.encode(),
        headers={"Content-Type": "text/xml"},
    )
    took = time.perf_counter() - start
    assert r.status_code == 200, r.text
    return str(xmltodict.parse(r.text)["xml"]["Content"]), took


def timed_get(rig: Rig, path: str) -> float:
    start = time.perf_counter()
    r = rig.http.get(f"{rig.url}{path}")
    took = time.perf_counter() - start
    assert r.status_code == 200, r.text
    return took


def verdict_burst(
    rig: Rig, jobs: list[tuple[str, str]], threads: int, pace: float = 0.0, until: float | None = None
) -> list[float]:
    """Award (openid, case) jobs from `threads` clients at once, each pausing `pace` s between verdicts and
    stopping at the monotonic time `until` (if given); return each verdict's latency (s)."""
    clients = [httpx.Client(headers=AUTH, timeout=60) for _ in range(threads)]
    try:
        with ThreadPoolExecutor(threads) as pool:
            shares = [jobs[i::threads] for i in range(threads)]
            runs = [
                pool.submit(award_all, rig, share, http, pace, until)
                for share, http in zip(shares, clients, strict=True)
            ]
            return [took for run in runs for took in run.result()]
    finally:
        for client in clients:
            client.close()


def award_all(
    rig: Rig, jobs: list[tuple[str, str]], http: httpx.Client, pace: float = 0.0, until: float | None = None
) -> list[float]:
    took = []
    for openid, case_id in jobs:
        if until is not None and time.monotonic() >= until:
            break
        took.append(rig.award(openid, case_id, http))
        time.sleep(pace)
    return took


@dataclass
class SideProbes:
    """/healthz, /rules and the WeChat rank reply, timed in a loop beside the verdicts."""

    rig: Rig
    quiet: str  # a citizen whose points do not change meanwhile: the WeChat reply must show them exactly
    healthz: list[float] = field(default_factory=list)
    rules: list[float] = field(default_factory=list)
    wechat: list[float] = field(default_factory=list)

    def run(self, until: float) -> None:
        while time.monotonic() < until:
            self.healthz.append(timed_get(self.rig, "/healthz"))
            self.rules.append(timed_get(self.rig, "/rules"))
            reply, took = signed_rank(self.rig, self.quiet)
            assert f"累计积分：{self.rig.timeline.expected(self.quiet)} 分" in reply, reply  # from the ledger
            self.wechat.append(took)
            time.sleep(0.2)


def fmt_ms(samples: list[float]) -> str:
    return f"p50 {statistics.median(samples) * 1000:.0f} ms, p99 {percentile(samples, 0.99) * 1000:.0f} ms"


def max_ms(samples: list[float]) -> str:
    return f"{max(samples) * 1000:.0f} ms"


HUNG_SECONDS = 7.0  # verdicts keep coming this long while Redis is hung (several half-open probes)


def test_hung_redis_verdicts_commit_and_the_service_answers(rig: Rig) -> None:
    rig.serve(extra={"REWARDS_REDIS_BREAKER_OPEN_SECONDS": "2"})  # a probe every 2 s while hung
    people, quiet = citizens(4, "d"), "o-d-quiet"
    cases = rig.report(people, 30)
    for case_id in rig.report([quiet], 3)[quiet]:
        rig.award(quiet, case_id)
    normal = verdict_burst(rig, [(o, cases[o].pop()) for _ in range(6) for o in people], 4, pace=0.1)
    rig.converge(time.monotonic())
    watcher = rig.watch(people[:2])
    rig.redis.hang()
    hung_at = time.monotonic()
    side = SideProbes(rig, quiet)
    with ThreadPoolExecutor(1) as pool:
        probes = pool.submit(side.run, hung_at + HUNG_SECONDS)
        hung = verdict_burst(
            rig, [(o, cases[o].pop()) for _ in range(24) for o in people], 4, 0.1, hung_at + HUNG_SECONDS
        )
        probes.result()
    rig.redis.resume()
    resumed = time.monotonic()
    took = rig.converge(resumed)
    time.sleep(0.5)
    v = judged(watcher, rig.timeline)
    rig.rewards_check()
    lost, doubled = rig.books()
    assert (lost, doubled) == (0, 0)
    slow = sum(1 for t in hung if t > 0.4)
    print(
        f"\n[fault-suite] hung Redis ({HUNG_SECONDS:.0f} s, 4 clients, breaker open 2 s): verdicts before"
        f" {fmt_ms(normal)} (n={len(normal)}); while hung {fmt_ms(hung)} (n={len(hung)}, {slow} over 400 ms,"
        f" max {max_ms(hung)}); /healthz p50 {statistics.median(side.healthz) * 1000:.0f} ms max"
        f" {max_ms(side.healthz)}; /rules max {max_ms(side.rules)}; WeChat 排名 max {max_ms(side.wechat)}"
        f" (n={len(side.wechat)})"
    )
    record(
        "(d) Redis hung (SIGSTOP) 7 s, then SIGCONT",
        f"all {len(hung)} verdicts 200 ({fmt_ms(hung)} while hung vs {fmt_ms(normal)} before); /healthz, /rules,"
        f" WeChat 排名 answered (max {max_ms(side.healthz)} / {max_ms(side.rules)} / {max_ms(side.wechat)});"
        f" {seen(v)}",
        lost,
        doubled,
        f"{took:.1f} s after SIGCONT",
    )


# --- (e) two workers, a burst of verdicts, Redis flushed in the middle --------------------------------------------
def test_two_workers_burst_with_a_flush_no_doubled_points(rig: Rig) -> None:
    rig.serve(workers=2)
    people = citizens(10, "e")
    cases = rig.report(people, 10)
    jobs = [(o, c) for o in people for c in cases[o]]
    random.Random(7).shuffle(jobs)
    watcher = rig.watch(people[:3])
    half = len(jobs) // 2
    first = verdict_burst(rig, jobs[:half], 8)
    rig.redis.flushall()  # both workers find the boards gone and race to rebuild while verdicts go on
    flushed = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        replays = pool.submit(replay_all, rig, jobs[:half])  # retries of verdicts already given: no-ops
        second = verdict_burst(rig, jobs[half:], 8)
        replays.result()
    burst_over = time.monotonic()
    took = rig.converge(burst_over)
    time.sleep(0.5)
    v = judged(watcher, rig.timeline)
    rig.rewards_check()
    lost, doubled = rig.books()
    assert (lost, doubled) == (0, 0)
    record(
        "(e) `--workers 2`, 8 clients, FLUSHALL mid-burst",
        f"{len(first) + len(second)} verdicts 200 ({fmt_ms(first + second)}), {half} replays no-ops; {seen(v)}",
        lost,
        doubled,
        f"{took:.1f} s after the burst ({burst_over - flushed + took:.1f} s after the flush)",
    )


def replay_all(rig: Rig, jobs: list[tuple[str, str]]) -> None:
    with httpx.Client(headers=AUTH, timeout=60) as http:
        for _, case_id in jobs:
            r, _ = rig.verdict(case_id, http)
            assert r.status_code == 200, r.text
