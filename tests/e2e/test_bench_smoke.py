"""Smoke runs of the benchmarks (bench/*.py --tiny) so that they cannot rot unnoticed.

Each script runs end to end at its smallest size and must print every figure beside its baseline and ratio. The
figures themselves are never checked: no assertion here depends on how fast the machine is. `--tiny` has no time
bound on the load phases, so the request counts in the e2e table are exact.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
import redis

from tests.conftest import PG_ADMIN_URL, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
HANG_GUARD_SECONDS = 1800  # only stops a hung script; a slow machine is not a failure
NUM = r"[\d,.]+"

E2E_ROWS = [
    r"\| `rebuild` of 2,000 citizens .* \| [\d.]+ s .* \| raw ZADD of the same [\d,]+ members .* packed by hiredis",
    r"\| `rebuild` \(as above\) \| [\d.]+ s \| raw ZADD of the same [\d,]+ members .* through redis-py's pipeline",
    r"\| weekly close of \d{4}-W\d{2} \(500 valid cases, [\d,]+ eligible participants.* \| [\d.]+ s \| bare SQL",
    r"\| weekly close \(as above\) \| [\d.]+ s \| raw pipelined ZADD of the week's [\d,]+ members",
    r"\| `GET /api/v1/citizens/\{openid\}/standing` \(2,000 citizens on the boards; 4 connections, 200 req\)"
    r" \| [\d,]+ req/s \| bare endpoint .* \(200 req\)",
    r"\| standing latency p50 / p99 at 4 connections \| [\d.]+ / [\d.]+ ms \| bare ZREVRANK endpoint",
    r"\| standing latency p50 / p99 at 1 connection \| [\d.]+ / [\d.]+ ms \| bare ZREVRANK endpoint",
    r"\| verdicts through HTTP .* 50 verdicts\) \| [\d,]+/s \(.*; Redis server [\d,]+ µs/verdict\)"
    r" \| the same count of bare INSERT \+ COMMIT .* \| [\d,]+/s \(.*; Redis server [\d.,]+ µs/ZINCRBY\) \|",
    r"\| intake events .* 200 events\) \| [\d,]+ events/s .* \| bare INSERT \+ COMMIT of each event's JSON",
    r"\| web worker peak RSS .* \| \d+ MiB \|",
    r"\| Redis memory per citizen .* \| -?\d+ B \|",
    # issue 13: after the rows above
    r"\| `rebuild` \(as above\) \| [\d.]+ s \| raw ZADD of the same [\d,]+ members .* descending score order.* \|"
    r" [\d.]+ s \| [\d.]+× the time \|",
    r"\| slowest Redis command while the rebuild ran .* \| [\d.]+ ms \(.*\); \d+ latency event\(s\) \|",
    r"\| award script, one entry per round trip \(200 entries.* \| [\d,]+/s \(server [\d.na]+ µs/call\) \| raw ZINCRBY"
    r" .* \| [\d.]+× \|",
    r"\| standing throughput at 1 → 2 uvicorn workers \(4 connections\) \| [\d,]+ → [\d,]+ req/s",
    r"\| verdicts at 1 → 2 uvicorn workers \(4 connections, 50 verdicts at 2\) \| ",
    r"\| standing latency p50 / p99 at 1 connection, 500 citizens on the boards \| [\d.]+ / [\d.]+ ms \|",
    r"\| standing latency p50 / p99 at 1 connection, 2,000 citizens on the boards \| [\d.]+ / [\d.]+ ms \|",
    *(
        rf"\| intake at batch size {size} \(signed webhook.*\) \| [\d,]+ events/s \(p50 \d+ ms per batch\)"
        r" \| bare INSERT \+ COMMIT of each event's JSON .* \| [\d,]+/s \| [\d.]+× \|"
        for size in ("1", "10", "100", "1,000")
    ),
]
LEADERBOARD_LINES = [
    r"^\(a\) award path, 1,000 entries pipelined",
    rf"^    Lua apply {NUM}/s   raw ZINCRBY \(1 board\) {NUM}/s   ratio {NUM}x the time$",
    rf"^    one entry per round trip, 100 entries: Lua apply {NUM}/s$",
    rf"^    raw ZINCRBY {NUM}/s   ratio {NUM}x the time$",
    r"^2,000 citizens:$",
    r"^5,000 citizens:$",
    rf"^  \(b\) standing\(\) p50 {NUM} ms  p99 {NUM} ms",
    rf"bare ZRANK p50 {NUM} ms  p99 {NUM} ms$",
    rf"^  \(d\) memory -?{NUM} B/citizen",
    rf"^  \(c\) rebuild of 5,000 citizens .*\n.* raw ZADD of the same members {NUM} s   ratio {NUM}x the time$",
    r"^\(c\) rebuild from SQL \(SQLite\): 2,000 cases = [\d,]+ ledger entries",
    rf"raw ZADD of the same members {NUM} s   ratio {NUM}x the time$",
]
WECHAT_LINES = [
    r"^300 citizens, 600 ledger lines; p50 / p99 in ms, ratio of p50 to the baseline$",
    rf"^  baseline GET /healthz +{NUM} / +{NUM}$",
    rf"^  排名 plain \(Redis boards\) +{NUM} / +{NUM}   x{NUM}$",
    rf"^  排名 safe mode \(Redis boards\) +{NUM} / +{NUM}   x{NUM}$",
    rf"^  排名 plain, Redis down \(ledger\) +{NUM} / +{NUM}   x{NUM}$",
]

INTAKE_LINES = [
    r"^\| batch size \| intake events/s \| bare INSERT \+ COMMIT /s \| ratio \|$",
    *(rf"^\| {size} \| {NUM} \| {NUM} \| {NUM}× \|$" for size in ("1", "10", "100", "1,000")),
    rf"^History import \(`rewards intake import`, batches of 500\): 100 cases, {NUM} events in {NUM} s",
]

STATS_LINES = [
    r"^3,000 cases over 52 weeks \(8 districts, 30 departments\), [\d,]+ history steps, [\d,]+ ledger lines",
    rf"^cold GET /stats \(computes and seals the trend's closed weeks\)  {NUM} s$",
    rf"^warm GET /stats p50 / max of 5  {NUM} / {NUM} s   ratio {NUM}x the bare count$",
    rf"^warm GET /api/v1/stats p50 of 5  {NUM} s   ratio {NUM}x the bare count$",
    rf"^GET /stats recomputing this week live \(REWARDS_STATS_LIVE_SECONDS=0\) p50 of 5  {NUM} s   ratio {NUM}x",
    rf"^bare SELECT count\(\*\) FROM cases \(3,000 rows\) p50 of 5  {NUM} s$",
    r"^Target: warm /stats under 1 s: (met|NOT met)\.$",
]


BENCH_PG_URL = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://", 1)  # libpq form, as bench/ takes it


def bench_env() -> dict[str, str]:
    """This process's environment with the bench pointed at the test services."""
    return {**os.environ, "BENCH_PG_URL": BENCH_PG_URL, "BENCH_REDIS_URL": REDIS_URL}


def run_bench(script: str) -> subprocess.CompletedProcess[str]:
    """Run `bench/<script> --tiny` against the test services; fail with its stderr when it exits non-zero."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), "--tiny"],
        cwd=ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def assert_lines(patterns: list[str], out: str) -> None:
    for pattern in patterns:
        assert re.search(pattern, out, re.M), f"missing {pattern!r} in:\n{out}"


@pytest.mark.slow
def test_e2e_benchmark_prints_every_row_with_its_ratio(redis_server: redis.Redis) -> None:
    """`bench/e2e.py --tiny` exits 0 and prints the whole table with a figure and a ratio in every timed row."""
    done = run_bench("e2e.py")
    out = done.stdout
    assert_lines(E2E_ROWS, out)
    table = [line for line in out.splitlines() if line.startswith("| ") and not line.startswith("| measure")]
    assert len(table) == len(E2E_ROWS), out
    ratios = [line.split(" | ")[4] for line in table[:9]]
    assert all(re.match(r"[\d.]+×", r) for r in ratios), ratios
    assert re.search(r"^Targets: rebuild .*; weekly close .*; standing .*\.$", out, re.M), out
    assert "unlinked" in done.stderr  # clean-up ran
    if shutil.which("vmtouch") and os.geteuid() == 0:  # as scripts/test installs it, and a local server
        assert re.search(r"database files locked in the page cache \(vmtouch -l\): [\d.]+ GiB", out), out
        leftover = subprocess.run(["pgrep", "-f", "vmtouch .*bench-e2e-"], capture_output=True, text=True)
        assert leftover.stdout == "", "the clean-up left the page-cache lock running"
    else:
        assert "database files not locked in the page cache: " in out, out


@pytest.mark.slow
def test_leaderboard_benchmark_prints_every_section_with_its_ratio(redis_server: redis.Redis) -> None:
    """`bench/leaderboard.py --tiny` exits 0 and prints sections (a)-(d), each figure beside its baseline."""
    out = run_bench("leaderboard.py").stdout
    assert_lines(LEADERBOARD_LINES, out)
    assert len(re.findall(r"ratio [\d.]+x the time", out)) == 4, out
    assert len(re.findall(r"\(b\) standing\(\)", out)) == 2, out  # one per population


@pytest.mark.slow
def test_wechat_reply_benchmark_prints_each_reply_against_the_baseline(redis_server: redis.Redis) -> None:
    """`bench/wechat_reply.py --tiny` exits 0 and prints every reply path with its ratio to GET /healthz."""
    out = run_bench("wechat_reply.py").stdout
    assert_lines(WECHAT_LINES, out)


@pytest.mark.slow
def test_intake_benchmark_prints_every_batch_size_with_its_ratio(redis_server: redis.Redis) -> None:
    """`bench/intake.py --tiny` exits 0, prints batch sizes 1-1000 beside bare INSERT + COMMIT, and times an import."""
    out = run_bench("intake.py").stdout
    assert_lines(INTAKE_LINES, out)


@pytest.mark.slow
def test_stats_benchmark_prints_the_record_beside_a_bare_count(redis_server: redis.Redis) -> None:
    """`bench/stats.py --tiny` exits 0 and prints cold and warm /stats beside a bare count of the same rows."""
    done = run_bench("stats.py")
    assert_lines(STATS_LINES, done.stdout)
    assert "dropped bench_stats_" in done.stderr  # clean-up ran


@pytest.mark.slow
def test_e2e_benchmark_cleans_up_when_terminated(redis_server: redis.Redis) -> None:
    """A run stopped by SIGTERM mid-way (a timeout, `kill`) exits 143 after its clean-up: its database, its keys and
    its page-cache lock (a vmtouch daemon that outlives the run otherwise) are gone."""
    command = [sys.executable, str(ROOT / "bench" / "e2e.py"), "--tiny"]
    pipes = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
    with subprocess.Popen(command, cwd=ROOT, env=bench_env(), **pipes) as proc:  # type: ignore[call-overload]
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # the seed and the page-cache lock are done once the rebuild starts
            seen.append(line)
            if line.startswith("[e2e] rebuild"):
                break
        proc.send_signal(signal.SIGTERM)
        seen.append(proc.stderr.read())
        returncode = proc.wait(timeout=HANG_GUARD_SECONDS)
    err = "".join(seen)
    assert returncode == 128 + signal.SIGTERM, err[-4000:]
    assert "[e2e] terminated: cleaning up" in err and "[e2e] clean-up:" in err, err[-4000:]
    found = re.search(r"unlinked [\d,]+ keys of prefix (e2e[0-9a-f]+)", err)
    assert found is not None, err[-4000:]
    prefix = found.group(1)
    run = prefix.removeprefix("e2e")
    assert not list(redis_server.scan_iter(match=f"{{{prefix}*", count=1000))
    with psycopg.connect(BENCH_PG_URL) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (f"bench_e2e_{run}",)).fetchone() is None
    lock = subprocess.run(["pgrep", "-f", f"vmtouch .*bench-e2e-{run}-"], capture_output=True, text=True, check=False)
    assert lock.stdout == "", "the page-cache lock outlived the run"
