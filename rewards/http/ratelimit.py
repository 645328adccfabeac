"""Public rate limits: fixed windows counted in Redis, per client IP and per signed-in citizen.

Keys (P = Settings.leaderboard_key_prefix, so test runs clean up after themselves):

    P:rl:<bucket>:<ip|citizen>:<digest>:<window index>   INCR counter, expires when its window is over

The identity is hashed into the key so that IPs and openids never appear in Redis key listings. A fixed window
allows up to twice the limit across a window boundary; that is acceptable for abuse control and keeps the
check to one round trip. If Redis is unreachable the limiter fails open (logged), because refusing every
citizen would be worse than briefly not limiting them.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import redis
from fastapi import Request

from rewards.clock import Clock
from rewards.config import Settings
from rewards.errors import TooManyRequests
from rewards.health import CircuitBreaker
from rewards.logs import get_logger

log = get_logger("ratelimit")

# KEYS[1] = counter of one (bucket, identity, window); ARGV[1] = seconds until the window is over, plus a margin.
# Returns the count after this hit. The TTL is (re)set whenever it is missing so no counter can live forever.
HIT_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return n
"""


@dataclass(frozen=True)
class Window:
    """One fixed window: its index (epoch seconds // length) and the seconds left until it ends."""

    index: int
    retry_after: int


def window_at(epoch_seconds: float, length: int) -> Window:
    """Return the fixed window an instant falls in; retry_after is a whole number of seconds, at least 1."""
    index = math.floor(epoch_seconds / length)
    remaining = (index + 1) * length - epoch_seconds
    return Window(index, max(1, math.ceil(remaining)))


def identity_digest(kind: str, identity: str) -> str:
    """Return a short stable digest of an identity (an IP or an openid) for key names."""
    return hashlib.blake2b(f"{kind}:{identity}".encode(), digest_size=12).hexdigest()


def counter_key(prefix: str, bucket: str, kind: str, identity: str, window: int) -> str:
    """Return the Redis key counting one identity's hits in one window."""
    return f"{prefix}:rl:{bucket}:{kind}:{identity_digest(kind, identity)}:{window}"


@dataclass(frozen=True)
class Limit:
    """A limit on one identity: at most `limit` hits per window."""

    kind: str  # "ip" | "citizen"
    identity: str
    limit: int


class RateLimiter:
    """Counts hits in Redis and raises TooManyRequests past a limit; fails open when Redis is down."""

    def __init__(self, client: redis.Redis, settings: Settings, clock: Clock, breaker: CircuitBreaker) -> None:
        self.redis = client
        self.settings = settings
        self.clock = clock
        self.breaker = breaker  # shared with the boards: after Redis failures every caller skips it for a moment
        self._script = client.register_script(HIT_SCRIPT)

    def hit(self, bucket: str, limits: list[Limit]) -> None:
        """Count one hit against every limit; raise TooManyRequests (429) when any is exceeded."""
        if not limits or not self.breaker.allow():
            return  # Redis is down or hung: fail open rather than refuse every citizen
        length = self.settings.rate_limit_window_seconds
        window = window_at(self.clock.now().timestamp(), length)
        prefix = self.settings.leaderboard_key_prefix
        keys = [counter_key(prefix, bucket, lim.kind, lim.identity, window.index) for lim in limits]
        try:
            counts = self._count(keys, window.retry_after + 1)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.breaker.failure()
            log.warning("rate limiter unavailable, failing open: %s", type(exc).__name__)
            return
        self.breaker.success()
        for lim, count in zip(limits, counts, strict=True):
            if count > lim.limit:
                raise TooManyRequests(
                    f"too many requests ({lim.kind} limit {lim.limit} per {length}s), retry in {window.retry_after}s",
                    retry_after=window.retry_after,
                )

    def _count(self, keys: list[str], ttl: int) -> list[int]:
        pipe = self.redis.pipeline(transaction=False)  # one round trip; keys may live on different shards
        for key in keys:
            self._script(keys=[key], args=[ttl], client=pipe)
        return [int(n) for n in pipe.execute()]


def limiter_of(request: Request) -> RateLimiter:
    """Return the application's limiter (built once by bootstrap())."""
    limiter: RateLimiter = request.app.state.http.limiter
    return limiter


def client_ip(request: Request) -> str:
    """Return the caller's IP as the server saw it (uvicorn applies X-Forwarded-For from trusted proxies only)."""
    return request.client.host if request.client else "unknown"


def limits_for(request: Request, per_ip: int, per_citizen: int | None) -> list[Limit]:
    """Return the per-IP limit and, when a citizen is signed in, the per-citizen limit of a request."""
    limits = [Limit("ip", client_ip(request), per_ip)]
    openid = getattr(request.state, "citizen_openid", None)
    if per_citizen is not None and isinstance(openid, str):
        limits.append(Limit("citizen", openid, per_citizen))
    return limits


def rate_limited(bucket: str = "public", *, sign_in: bool = False) -> Callable[[Request], None]:
    """FastAPI dependency: count the request per IP (and per citizen); 429 with Retry-After past the limit."""

    def dependency(request: Request) -> None:
        limiter = limiter_of(request)
        s = limiter.settings
        per_ip = s.rate_limit_sign_in_per_ip if sign_in else s.rate_limit_per_ip
        per_citizen = None if sign_in else s.rate_limit_per_citizen
        limiter.hit(bucket, limits_for(request, per_ip, per_citizen))

    dependency.__name__ = f"rate_limited_{bucket}"
    return dependency


public_rate_limit = rate_limited("public")  # for public pages and APIs: Depends(public_rate_limit)
