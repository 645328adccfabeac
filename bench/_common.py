"""Helpers of bench/e2e.py (stdlib only): the load generator (run as a second process), the service, the report.

    python bench/_common.py < spec.json > result.json      # what bench/e2e.py runs for each load phase

A raw asyncio HTTP/1.1 keep-alive client (one request in flight per connection, `concurrency` connections),
much lighter per request than httpx, so on a 2-core box the service, not the client, is what is measured.
Bounded in count (the requests given) and in time (`max_seconds`: no new request is sent after it; null: no time
bound, every request is sent, so the counts do not depend on the machine's speed).

Spec (JSON): host, port, concurrency, max_seconds, warmup (requests sent first and not counted), and one of
  {"kind": "get", "paths": [...], "headers": {...}}
  {"kind": "post", "requests": [[path, body], ...], "headers": {...}}
  {"kind": "intake", "path": ..., "secret": ..., "batches": [[event, ...], ...]}  signed per docs/intake.md
Result (JSON): sent, done, seconds, rate, p50_ms, p99_ms, statuses {code: count}, errors (a few bodies),
and for intake the sums of the response bodies' "applied" and "failed" counts.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
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
        return [Request(lambda p=p: http_request("GET", host, p, headers)) for p in spec["paths"]]
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
    }


# -- the service under uvicorn (started by bench/e2e.py) ---------------------------------------------------------


def free_port() -> int:
    """Return a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """`uvicorn e2e_app:app_factory --factory --workers N` (1 unless told) as a subprocess, configured by REWARDS_*
    variables."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.log = log
        self.command = [
            sys.executable, "-m", "uvicorn", "e2e_app:app_factory", "--factory", "--app-dir", str(BENCH),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers), "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip
        with log.open("wb") as out:
            self.proc = subprocess.Popen(self.command, env={**os.environ, **env}, cwd=ROOT, stdout=out, stderr=out)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"uvicorn did not answer /healthz within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}"
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
    """Run one load phase in a second process (bench/_common.py) and return its figures."""
    spec = {"host": "127.0.0.1", "port": port, **spec}
    bound = spec.get("max_seconds")
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
