"""Helpers of bench/e2e.py (stdlib only): the load generators (run as a second process), the service, the report.

    python bench/_common.py < spec.json > result.json      # the Python load generator, one load phase

Time-bound GET phases (standing, the bare endpoint) run under wrk (`apt-get install wrk`: C, one epoll thread,
a Lua script cycling through the paths; ~40 µs of CPU a request against ~120 µs for the Python client below,
and no asyncio wake-up inside the measured latency). Time-bound POST phases (the verdicts) run under wrk too, each
request sent exactly once and every one sent answered before wrk stops (WRK_POST_SCRIPT): the Python client took
0.2-0.5 ms of CPU a verdict from the 2 cores the service runs on. Without wrk they fall back to the Python client,
with a warning on stderr. Locust was not adopted: it is Python too (gevent), so on 2 CPUs its own CPU would be taken
from the service it measures, which is what replacing the Python client is for.

The Python client: a raw asyncio HTTP/1.1 keep-alive client (one request in flight per connection,
`concurrency` connections), much lighter per request than httpx. It runs the POST phases (verdicts, signed intake
batches) and every phase of `--tiny`: bounded in count (the requests given) and in time (`max_seconds`: no new
request is sent after it; null: no time bound, every request is sent, so the counts do not depend on the machine's
speed). wrk is bounded in time only: it cycles through the paths for `max_seconds`.

Spec (JSON): host, port, concurrency, max_seconds, warmup (requests sent first and not counted), and one of
  {"kind": "get", "paths": [...], "headers": {...}, "count": N}   count: the Python client sends the first N only
  {"kind": "post", "requests": [[path, body], ...], "headers": {...}}
  {"kind": "intake", "path": ..., "secret": ..., "batches": [[event, ...], ...]}  signed per docs/intake.md
Result (JSON): sent, done, seconds, rate, p50_ms, p99_ms, statuses {code: count}, errors (a few bodies),
generator ("wrk" or "python"), and for intake the sums of the response bodies' "applied" and "failed" counts.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
STARTUP_SECONDS = 300  # a hang guard for the service's start, generous for a loaded machine


class Request:
    """One request ready to send: raw bytes, and whether its body reports intake counts."""

    __slots__ = ("intake", "make")

    def __init__(self, make: Any, intake: bool = False) -> None:
        self.make = make  # () -> bytes, built at send time (intake signatures carry the send time)
        self.intake = intake


def http_request(method: str, host: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """Return the bytes of an HTTP/1.1 keep-alive request."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if method != "GET" or body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def signed_batch(host: str, path: str, secret: str, events: list[dict[str, Any]]) -> bytes:
    """Return a webhook request for a batch, signed now: HMAC-SHA256 over '<timestamp>.<raw body>'."""
    body = json.dumps({"events": events}, ensure_ascii=False).encode()
    ts = str(int(time.time()))
    sig = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Timestamp": ts, "X-Signature": sig}
    return http_request("POST", host, path, headers, body)


def requests_of(spec: dict[str, Any]) -> list[Request]:
    """Expand a spec into the requests to send, in order."""
    host, kind = f"{spec['host']}:{spec['port']}", spec["kind"]
    headers = dict(spec.get("headers", {}))
    if kind == "get":
        paths = spec["paths"][: spec["count"]] if spec.get("count") is not None else spec["paths"]
        return [Request(lambda p=p: http_request("GET", host, p, headers)) for p in paths]
    if kind == "post":
        post = {**headers, "Content-Type": "application/json"}
        return [Request(lambda p=p, b=b: http_request("POST", host, p, post, b.encode())) for p, b in spec["requests"]]
    if kind == "intake":
        path, secret = spec["path"], spec["secret"]
        return [Request(lambda ev=ev: signed_batch(host, path, secret, ev), intake=True) for ev in spec["batches"]]
    raise ValueError(f"unknown load kind {kind!r}")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response (Content-Length framing, which uvicorn uses for these endpoints)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in header_lines:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding":
            raise ValueError("chunked responses are not expected from these endpoints")
    body = await reader.readexactly(length) if length else b""
    return int(status_line.split(" ", 2)[1]), body


class Run:
    """The shared state of one load run."""

    def __init__(self, todo: Iterator[Request], deadline: float) -> None:
        self.todo = todo
        self.deadline = deadline
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors: list[str] = []
        self.applied = 0
        self.failed = 0
        self.sent = 0


async def connection(host: str, port: int, run: Run, record: bool) -> None:
    """Send requests one after another on one keep-alive connection until none are left or time is up."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for request in run.todo:
            if time.perf_counter() > run.deadline:
                break
            data = request.make()
            run.sent += 1
            start = time.perf_counter()
            writer.write(data)
            status, body = await read_response(reader)
            elapsed = time.perf_counter() - start
            if not record:
                continue
            run.latencies.append(elapsed * 1000)
            run.statuses[status] = run.statuses.get(status, 0) + 1
            if status >= 300 and len(run.errors) < 5:
                run.errors.append(f"{status} {body[:300].decode('utf-8', 'replace')}")
            if request.intake and status < 500:
                counts = json.loads(body)
                run.applied += int(counts.get("applied", 0)) + int(counts.get("duplicate", 0))
                run.failed += int(counts.get("failed", 0)) + int(counts.get("rejected", 0))
    finally:
        writer.close()


async def drive(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the warm-up, then the measured load; return the figures."""
    host, port, n = spec["host"], int(spec["port"]), int(spec["concurrency"])
    todo = requests_of(spec)
    warmup = int(spec.get("warmup", 0))
    if warmup:
        warm = Run(iter(todo[:warmup]), float("inf"))
        await asyncio.gather(*(connection(host, port, warm, False) for _ in range(n)))
    measured = todo[warmup:]
    bound = spec.get("max_seconds")
    run = Run(iter(measured), float("inf") if bound is None else time.perf_counter() + float(bound))
    start = time.perf_counter()
    await asyncio.gather(*(connection(host, port, run, True) for _ in range(n)))
    seconds = time.perf_counter() - start
    lat = run.latencies
    q = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [lat[0] if lat else 0.0] * 99
    return {
        "offered": len(measured),
        "sent": run.sent,
        "done": len(lat),
        "seconds": seconds,
        "rate": len(lat) / seconds if seconds > 0 else 0.0,
        "p50_ms": q[49],
        "p99_ms": q[98],
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "errors": run.errors,
        "applied": run.applied,
        "failed": run.failed,
        "generator": "python",
    }


# -- wrk (the time-bound GET phases) ---------------------------------------------------------------------------

# args: the file of paths, then "Name: value" headers. Counts every answer's status in the thread (wrk calls
# response() for each; the status codes other than 200 in a string), and prints one JSON line; latency percentiles
# from wrk's own histogram (µs).
WRK_SCRIPT = r"""
local paths, i, headers, threads = {}, 0, {}, {}
ok, other, bad = 0, "", ""  -- per thread; read back by done() with thread:get (numbers and strings cross over)
function setup(thread) threads[#threads + 1] = thread end
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  for k = 2, #args do
    local name, value = string.match(args[k], "^([^:]+):%s*(.*)$")
    headers[name] = value
  end
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i], headers)
end
function response(status, _, body)
  if status == 200 then ok = ok + 1; return end
  other = other .. " " .. status
  if #bad < 1500 then bad = bad .. "\030" .. status .. " " .. string.sub(body or "", 1, 300) end
end
local function quoted(text) return '"' .. string.gsub(text, '[%c"\\]', " ") .. '"' end
function done(summary, latency, _)
  local n, codes, errs = 0, {}, {}
  for _, t in ipairs(threads) do
    n = n + t:get("ok")
    codes[#codes + 1] = t:get("other")
    for e in string.gmatch(t:get("bad"), "\030([^\030]*)") do errs[#errs + 1] = quoted(e) end
  end
  local e = summary.errors
  io.write(string.format('WRK-JSON {"requests": %d, "us": %d, "p50_us": %d, "p99_us": %d, "ok": %d, "other": %s,'
    .. ' "errors": [%s], "socket_errors": %d}\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), n, quoted(table.concat(codes, " ")), table.concat(errs, ", "),
    e.connect + e.read + e.write + e.timeout))
end
"""
_WARNED: set[str] = set()


def wrk_binary() -> str | None:
    """The wrk executable, or None (once, a warning that the Python client measures the GET phases instead)."""
    found = shutil.which("wrk")
    if found is None and "wrk" not in _WARNED:
        _WARNED.add("wrk")
        print(
            "[e2e] wrk not found (Debian/Ubuntu: apt-get install wrk): the GET phases use the Python load"
            " generator, whose own CPU shares the machine with the service",
            file=sys.stderr,
        )
    return found


def wrk_load(wrk: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run a time-bound GET phase under wrk (a warm-up of 1-2 s first, not counted); return the figures."""
    seconds = max(1, round(float(spec["max_seconds"])))
    with TemporaryDirectory(prefix="bench-wrk-") as tmp:
        paths, script = Path(tmp) / "paths.txt", Path(tmp) / "paths.lua"
        paths.write_text("\n".join(spec["paths"]) + "\n", encoding="utf-8")
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        headers = [f"{k}: {v}" for k, v in spec.get("headers", {}).items()]
        url = f"http://{spec['host']}:{spec['port']}"

        def run(duration: int) -> dict[str, Any]:
            command = [wrk, "-t1", f"-c{int(spec['concurrency'])}", f"-d{duration}s", "--timeout", "30s",
                       "-s", str(script), url, "--", str(paths), *headers]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 120, check=False)
            line = next((x for x in done.stdout.splitlines() if x.startswith("WRK-JSON ")), None)
            if done.returncode != 0 or line is None:
                raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
            parsed: dict[str, Any] = json.loads(line.removeprefix("WRK-JSON "))
            return parsed

        if int(spec.get("warmup", 0)):
            run(2 if int(spec["concurrency"]) > 1 else 1)
        out = run(seconds)
    statuses = {"200": out["ok"]} if out["ok"] else {}
    for code in out["other"].split():
        statuses[code] = statuses.get(code, 0) + 1
    done_n = sum(statuses.values())
    if out["socket_errors"]:
        statuses["socket errors"] = out["socket_errors"]
    return wrk_result(out, int(out["requests"]), int(out["requests"]), done_n, statuses)


def wrk_result(out: dict[str, Any], offered: int, sent: int, done: int, statuses: dict[str, int]) -> dict[str, Any]:
    """The figures of a wrk run (its script's JSON `out`) in the form the Python client reports them."""
    took = out["us"] / 1e6
    return {
        "offered": offered,
        "sent": sent,
        "done": done,
        "seconds": took,
        "rate": done / took if took > 0 else 0.0,
        "p50_ms": out["p50_us"] / 1000,
        "p99_ms": out["p99_us"] / 1000,
        "statuses": dict(sorted(statuses.items())),
        "errors": out["errors"][:5],
        "applied": 0,
        "failed": 0,
        "generator": "wrk",
    }


# -- wrk for the POST phases (verdicts): every request exactly once ---------------------------------------------

# args: the file of requests ("<path>\t<body>" a line), the time bound in seconds, then "Name: value" headers.
# One thread: `sent` counts the requests handed out, each request of the file at most once. Once all are sent (or
# the time bound has passed, noticed in response()), request() hands out an empty write: the connection then waits
# idle, and the thread stops when the last request sent is answered, so no request is ever left unanswered (each
# answered verdict must have left exactly one ledger entry). Statuses and errors are counted as in WRK_SCRIPT.
WRK_POST_SCRIPT = r"""
local reqs, headers, threads, bound, started, probed = {}, {}, {}, 0, 0, false
sent, answered, ok, other, bad, closing = 0, 0, 0, "", "", false
function setup(thread) threads[#threads + 1] = thread end
function init(args)
  for line in io.lines(args[1]) do
    local path, body = string.match(line, "^([^\t]*)\t(.*)$")
    reqs[#reqs + 1] = {path, body}
  end
  bound = tonumber(args[2])
  for k = 3, #args do
    local name, value = string.match(args[k], "^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  started = os.time()
end
function request()
  if not probed then  -- wrk's first call, at start-up, only parses the request (to count a pipeline's): not sent
    probed = true
    return wrk.format("POST", reqs[1][1], headers, reqs[1][2])
  end
  if closing or sent >= #reqs then return "" end  -- nothing left to send: this connection idles until the stop
  sent = sent + 1
  return wrk.format("POST", reqs[sent][1], headers, reqs[sent][2])
end
function response(status, _, body)
  answered = answered + 1
  if status == 200 then ok = ok + 1
  else
    other = other .. " " .. status
    if #bad < 1500 then bad = bad .. "\030" .. status .. " " .. string.sub(body or "", 1, 300) end
  end
  if bound > 0 and os.time() - started >= bound then closing = true end
  if answered >= sent and (closing or sent >= #reqs) then
    wrk.thread:stop()
    io.write("WRK-STOPPED\n")  -- wrk's main thread sleeps for all of -d: the caller interrupts it (SIGINT)
    io.flush()
  end
end
local function quoted(text) return '"' .. string.gsub(text, '[%c"\\]', " ") .. '"' end
function done(summary, latency, _)
  local n, s, a, codes, errs = 0, 0, 0, {}, {}
  for _, t in ipairs(threads) do
    n, s, a = n + t:get("ok"), s + t:get("sent"), a + t:get("answered")
    codes[#codes + 1] = t:get("other")
    for e in string.gmatch(t:get("bad"), "\030([^\030]*)") do errs[#errs + 1] = quoted(e) end
  end
  local e = summary.errors
  io.write(string.format('WRK-JSON {"requests": %d, "us": %d, "p50_us": %d, "p99_us": %d, "ok": %d, "other": %s,'
    .. ' "errors": [%s], "socket_errors": %d, "sent": %d, "answered": %d}\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), n, quoted(table.concat(codes, " ")), table.concat(errs, ", "),
    e.connect + e.read + e.write + e.timeout, s, a))
end
"""
WRK_POST_GRACE_SECONDS = 600  # wrk's own -d: a hang guard only (the script stops once every request is answered)


def wrk_post_load(wrk: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run a POST phase under wrk: each of spec["requests"] sent once, in order over the connections, until all
    are answered (or no new one after max_seconds); return the figures of the Python client's result."""
    bound = spec.get("max_seconds")
    requests: list[list[str]] = spec["requests"]
    if not requests:
        raise ValueError("a POST phase needs at least one request")
    for path, body in requests:
        if "\t" in path or "\n" in path or "\n" in body or "\r" in body:
            raise ValueError(f"a request wrk cannot carry in its line file: {path!r}")
    with TemporaryDirectory(prefix="bench-wrk-") as tmp:
        lines, script = Path(tmp) / "requests.txt", Path(tmp) / "post.lua"
        lines.write_text("".join(f"{path}\t{body}\n" for path, body in requests), encoding="utf-8")
        script.write_text(WRK_POST_SCRIPT, encoding="utf-8")
        headers = [f"{k}: {v}" for k, v in {**spec.get("headers", {}), "Content-Type": "application/json"}.items()]
        url = f"http://{spec['host']}:{spec['port']}"
        seconds = (int(float(bound)) if bound is not None else 0) + WRK_POST_GRACE_SECONDS
        command = [wrk, "-t1", f"-c{int(spec['concurrency'])}", f"-d{seconds}s", "--timeout", "60s",
                   "-s", str(script), url, "--", str(lines), str(int(float(bound or 0))), *headers]  # fmt: skip
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
            assert proc.stdout is not None
            seen: list[str] = []
            for out_line in iter(proc.stdout.readline, ""):
                if out_line.startswith("WRK-STOPPED"):
                    break
                seen.append(out_line)
            if proc.poll() is None:
                # the thread stopped (all answered): end wrk's sleep; its summary counts the time up to here (~1 ms
                # late, a pipe's read), and its done() prints the figures
                proc.send_signal(signal.SIGINT)
            rest, err = proc.communicate(timeout=120)
            stdout = "".join(seen) + rest
    line = next((x for x in stdout.splitlines() if x.startswith("WRK-JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{stdout[-2000:]}\n{err[-2000:]}")
    out: dict[str, Any] = json.loads(line.removeprefix("WRK-JSON "))
    statuses = {"200": out["ok"]} if out["ok"] else {}
    for code in out["other"].split():
        statuses[code] = statuses.get(code, 0) + 1
    if out["socket_errors"] or out["answered"] != out["sent"]:
        # a request without an answer (a socket error, or wrk's guard stopped it): its verdict may or may not have
        # landed, so the phase cannot be checked against the ledger; only_ok() refuses it
        statuses["socket errors or unanswered"] = out["socket_errors"] + out["sent"] - out["answered"]
    return wrk_result(out, len(requests), int(out["sent"]), int(out["answered"]), statuses)


# -- the service under uvicorn (started by bench/e2e.py) ---------------------------------------------------------


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """`python bench/e2e_app.py PORT N`: uvicorn as `rewards serve` runs it, N workers (1 unless told), as a
    subprocess configured by REWARDS_* variables."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.log = log
        # uvicorn with the options of `rewards serve` (bench/e2e_app.py's serve()): the production protocol and limits
        self.command = [sys.executable, str(BENCH / "e2e_app.py"), str(self.port), str(workers)]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(self.command, env={**os.environ, **env}, cwd=ROOT, stdout=out, stderr=out)
        deadline = time.monotonic() + STARTUP_SECONDS
        seen: set[str] = set()  # worker pids that answered: every worker is up before any load is measured
        while len(seen) < workers:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/bench/pid", timeout=2) as reply:
                    if reply.status == 200:
                        seen.add(reply.read().decode())
                        continue
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{len(seen)} of {workers} uvicorn workers answered within {STARTUP_SECONDS} s:\n"
                    f"{log.read_text()[-3000:]}"
                )
            time.sleep(0.2)

    def peak_rss_mib(self) -> float:
        """Peak resident memory of the worker (VmHWM), MiB: with --workers 1 uvicorn serves in this process."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc/<pid>/status")

    def stop(self) -> None:
        """Stop the worker (SIGTERM, then SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)


def load(port: int, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one load phase in a second process and return its figures: wrk for a time-bound GET or POST phase when
    it is installed, else the Python client (bench/_common.py)."""
    spec = {"host": "127.0.0.1", "port": port, **spec}
    bound = spec.get("max_seconds")
    if spec["kind"] == "get" and bound is not None:
        wrk = wrk_binary()
        if wrk is not None:
            return wrk_load(wrk, spec)
    if spec["kind"] == "post" and bound is not None and not spec.get("warmup"):
        wrk = wrk_binary()
        if wrk is not None:
            return wrk_post_load(wrk, spec)
    done = subprocess.run(
        [sys.executable, str(BENCH / "_common.py")],
        input=json.dumps(spec, ensure_ascii=False),
        capture_output=True,
        text=True,
        timeout=None if bound is None else float(bound) + 600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def only_ok(result: dict[str, Any], what: str) -> int:
    """Return the count of 200 answers; refuse a phase with any other answer (the path did not work)."""
    bad = {code: n for code, n in result["statuses"].items() if code != "200"}
    if bad:
        raise RuntimeError(f"{what}: unexpected answers {bad}: {result['errors']}")
    return int(result["statuses"].get("200", 0))


# -- the report --------------------------------------------------------------------------------------------------

BEGIN, END = "<!-- e2e:begin -->", "<!-- e2e:end -->"


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure beside its same-run baseline."""

    measure: str
    figure: str
    baseline: str = "—"
    base_figure: str = "—"
    ratio: str = "—"
    target: str = "—"


def table(rows: Sequence[Row]) -> str:
    """Return the rows as a markdown table."""
    head = "| measure | figure | baseline (same run) | baseline figure | ratio | target |"
    lines = [head, "|---|---|---|---|---|---|"]
    lines += [f"| {r.measure} | {r.figure} | {r.baseline} | {r.base_figure} | {r.ratio} | {r.target} |" for r in rows]
    return "\n".join(lines)


def machine_lines(extra: Sequence[str]) -> list[str]:
    """Describe this machine: CPUs, CPU model, RAM, plus the server versions the caller measured."""
    model = "unknown CPU"
    mem_kib = 0
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        model = found.group(1).strip() if found else model
        found = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        mem_kib = int(found.group(1)) if found else 0
    except OSError:
        pass
    cpus = os.cpu_count() or 0
    return [f"{cpus} CPUs (nproc), {model}, {mem_kib / 2**20:.1f} GiB RAM", *extra]


def replace_block(path: Path, block: str, title: str) -> None:
    """Put `block` between the e2e markers of a file (created with a title when missing); text outside is kept."""
    text = path.read_text(encoding="utf-8") if path.exists() else f"{title}\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path} has no {BEGIN} … {END} markers: not writing the figures there")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{block.strip()}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    """Read a spec from stdin, run it, print the result as JSON."""
    spec = json.load(sys.stdin)
    print(json.dumps(asyncio.run(drive(spec))))


if __name__ == "__main__":
    main()
