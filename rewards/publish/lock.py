"""A Redis lock: SET NX PX with a random token, released and extended only by its holder (compare-and-act)."""

from __future__ import annotations

import secrets
from types import TracebackType

import redis

# KEYS[1] lock key; ARGV[1] holder token. Deletes the key only while it still holds our token.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
# KEYS[1] lock key; ARGV[1] holder token; ARGV[2] new time-to-live in milliseconds.
EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class RedisLock:
    """A lease held by one process at a time; it expires on its own if the holder dies."""

    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.token = secrets.token_hex(16)
        self.held = False
        self._release = client.register_script(RELEASE)
        self._extend = client.register_script(EXTEND)

    def acquire(self) -> bool:
        """Take the lock if nobody holds it; return whether we hold it now."""
        self.held = bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        return self.held

    def extend(self) -> bool:
        """Renew the lease for another ttl; False when it was lost (expired and taken by someone else)."""
        self.held = bool(self._extend(keys=[self.key], args=[self.token, self.ttl_ms]))
        return self.held

    def release(self) -> bool:
        """Give the lock up if we still hold it; never deletes another holder's lock."""
        released = bool(self._release(keys=[self.key], args=[self.token]))
        self.held = False
        return released

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.held:
            self.release()
