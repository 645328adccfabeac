"""Real servers a fault test starts, kills, hangs and restarts itself: a private redis-server, the rewards service.

Both run in their own process group (start_new_session), so a test can SIGKILL a server with all its workers, or
SIGSTOP a Redis, without touching any other process on the machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

from tests.fakes.live import free_port

STARTUP_SECONDS = 60.0  # generous: two workers importing the app on a busy 2-CPU machine
REWARDS = str(Path(sys.executable).with_name("rewards"))  # the console script of the running interpreter's venv


class RedisServer:
    """A redis-server on a free loopback port, without persistence (a restart comes back empty)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        """The redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A plain client for the test's own checks (FLUSHALL, PING)."""
        return redis.Redis(port=self.port, decode_responses=True, socket_timeout=5)

    def start(self) -> None:
        """Start the server (again, empty) on the same port; wait until it answers."""
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.workdir), "--logfile", str(self.workdir / f"redis-{self.port}.log")]
        self.proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_SECONDS
        with self.client() as probe:
            while True:
                try:
                    if probe.ping():
                        return
                except redis.ConnectionError:
                    pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"redis-server on port {self.port} did not start")
                time.sleep(0.02)

    def flushall(self) -> None:
        """FLUSHALL: the server stays up, everything it held is gone."""
        with self.client() as client:
            client.flushall()

    def kill(self) -> None:
        """SIGKILL: the server and everything it held are gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def hang(self) -> None:
        """SIGSTOP: the server still accepts connections (the kernel does) but never answers."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: the hung server answers again."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the server for good."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
            self.kill()


class RewardsService:
    """The web service in a subprocess, configured by REWARDS_* variables; its output goes to a log.

    `via_cli` runs `rewards serve --workers N` (checks the schema first); otherwise uvicorn runs the ASGI factory
    directly (`uvicorn rewards.asgi:app_factory --factory`), a few seconds quicker to start.
    """

    def __init__(self, env: dict[str, str], log: Path, workers: int = 1, via_cli: bool = False) -> None:
        self.env = env
        self.log = log
        self.workers = workers
        self.via_cli = via_cli
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:<port>"""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the service on a fresh port; wait until /healthz answers."""
        self.port = free_port()
        if self.via_cli:
            command = [REWARDS, "serve", "--port", str(self.port), "--workers", str(self.workers)]
        else:
            command = [sys.executable, "-m", "uvicorn", "rewards.asgi:app_factory", "--factory", "--no-access-log"]
            command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, env={**os.environ, **self.env}, stdout=out, stderr=out, start_new_session=True
            )
        try:
            self._wait_ready()
        except RuntimeError:
            self.kill()  # never leave a half-started server (or its workers) behind
            raise

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the service exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the service did not answer /healthz in {STARTUP_SECONDS} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the service and every worker (its process group): a crash, no shutdown hooks."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL of the group if it lingers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):  # workers the supervisor left behind
            os.killpg(self.proc.pid, signal.SIGKILL)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the service's output."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def rewards_command(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a `rewards` command (e.g. `check`) with the given REWARDS_* variables."""
    return subprocess.run(
        [REWARDS, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout, check=False
    )
