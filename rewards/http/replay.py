"""A replay cache for signed callbacks: each (timestamp, nonce) is admitted once within the window it is valid in.

WeChat signs a callback URL over (token, timestamp, nonce) only — not the body in plain mode — and the callback
accepts a timestamp within Settings.wechat_callback_max_skew_seconds of now, so a captured URL could be replayed
with another body for twice that long. The cache remembers every admitted (timestamp, nonce) with a digest of
its body for the window:

    P:nonce:<scope>:<digest of the key>   SET NX PX <window>, value = the body's digest

A second request with the same key and *the same body* is admitted (WeChat retries a message it got no answer to
within 5 s with the same content; answering it again changes nothing); with another body it is a replay and is
refused. Redis is used through the shared circuit breaker; every key is also kept in a bounded in-process cache,
which alone decides while Redis is down or hung (then a replay to another worker process is not seen).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import redis

from rewards.health import CircuitBreaker
from rewards.logs import get_logger

log = get_logger("replay")
LOCAL_CAPACITY = 100_000  # keys held in process (~200 bytes each): far above WeChat's callback rate per window


def key_digest(scope: str, key: str) -> str:
    """Return the Redis key suffix for a (scope, key): a digest, so nonces never appear in key listings."""
    return hashlib.sha256(f"{scope}\x1f{key}".encode()).hexdigest()[:32]


def body_digest(body: bytes) -> str:
    """Return the digest a key is remembered with."""
    return hashlib.sha256(body).hexdigest()[:32]


class LocalReplayCache:
    """The in-process part: at most `capacity` keys, each until its deadline (oldest dropped first when full)."""

    def __init__(self, capacity: int = LOCAL_CAPACITY, now: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self._now = now
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def admit(self, key: str, digest: str, ttl_seconds: float) -> bool:
        """True the first time within ttl (remembering it) or for the same digest again; False: a replay."""
        now = self._now()
        with self._lock:
            while self._seen:
                oldest, (_, deadline) = next(iter(self._seen.items()))
                if deadline > now and len(self._seen) < self.capacity:
                    break
                del self._seen[oldest]
            known = self._seen.get(key)
            if known is not None and known[1] > now:
                return hmac.compare_digest(known[0], digest)
            self._seen[key] = (digest, now + ttl_seconds)
            self._seen.move_to_end(key)
            return True


class ReplayCache:
    """Admits each signed (timestamp, nonce) once per window: Redis (shared by every process) and a local cache."""

    def __init__(
        self, client: redis.Redis, prefix: str, breaker: CircuitBreaker, local: LocalReplayCache | None = None
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.breaker = breaker  # shared with the boards and the rate limiter
        self.local = local if local is not None else LocalReplayCache()

    def admit(self, scope: str, key: str, body: bytes, ttl_seconds: float) -> bool:
        """True: first use of `key` within ttl, or the same body again; False: the key was used with another body."""
        name, digest = key_digest(scope, key), body_digest(body)
        locally = self.local.admit(name, digest, ttl_seconds)
        shared = self._shared_admit(f"{self.prefix}:nonce:{scope}:{name}", digest, ttl_seconds)
        return locally and shared is not False

    def _shared_admit(self, name: str, digest: str, ttl_seconds: float) -> bool | None:
        """Redis's verdict, or None when Redis is not to be asked (breaker open) or failed."""
        if not self.breaker.allow():
            return None
        try:
            admitted = self._redis_admit(name, digest, max(1, int(ttl_seconds * 1000)))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.breaker.failure()
            log.warning("replay cache: Redis unavailable, this process's cache decides: %s", type(exc).__name__)
            return None
        self.breaker.success()
        return admitted

    def _redis_admit(self, name: str, digest: str, ttl_ms: int) -> bool:
        if self.redis.set(name, digest, nx=True, px=ttl_ms):
            return True
        known = self.redis.get(name)
        return known is None or hmac.compare_digest(str(known), digest)  # None: it expired between the calls
