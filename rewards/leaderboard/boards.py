"""Redis sorted-set boards (weekly, all-time, per district)."""

from __future__ import annotations

from collections.abc import Sequence

import redis

from rewards.config import Settings
from rewards.scoring.model import EntryFacts


class Boards:
    """The leaderboards in Redis; a derived index of the ledger."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings

    def apply(self, entries: Sequence[EntryFacts]) -> None:
        """Apply committed ledger entries once each."""
        raise NotImplementedError("leaderboards are built in the leaderboard issue")
