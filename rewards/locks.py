"""The one lock of the service: a lease in Redis (redis-py's Lock) that expires on its own if the holder dies.

Used for the leaderboard rebuild, each week's publication, the scheduler's jobs and the WeChat token refresh.
A lease never blocks: `acquire()` answers at once, and only the holder can renew or release it.
"""

from __future__ import annotations

import redis
from redis.exceptions import LockError
from redis.lock import Lock


class Lease:
    """A named lease held by at most one process at a time (SET NX PX with a token, compare-and-act in Lua)."""

    def __init__(self, client: redis.Redis, key: str, seconds: float) -> None:
        self.key = key
        self._lock: Lock = client.lock(key, timeout=max(seconds, 0.001), blocking=False, thread_local=False)

    def acquire(self) -> bool:
        """Take the lease if nobody holds it; return whether we hold it now."""
        return bool(self._lock.acquire(blocking=False))

    def renew(self) -> bool:
        """Restart the lease's time to live; False when it was lost (expired, maybe taken by someone else)."""
        try:
            return bool(self._lock.reacquire())
        except LockError:
            return False

    def release(self) -> bool:
        """Give the lease up if we still hold it; never deletes another holder's lease."""
        try:
            self._lock.release()
        except LockError:
            return False
        return True

    @property
    def held(self) -> bool:
        """True while this object holds the lease."""
        return bool(self._lock.owned())


class Leases:
    """Hands out leases on one Redis client."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def lease(self, key: str, seconds: float) -> Lease:
        """A lease named `key` lasting `seconds` unless renewed."""
        return Lease(self.client, key, seconds)
