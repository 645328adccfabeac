"""The weekly prize table (pure): rank bands, their names and values; the one owner of prize places.

A table is valid when its bands start at rank 1, are contiguous, do not overlap and never pay a better rank
less than a worse one ("higher rank never a smaller prize"). Settings parse REWARDS_PRIZE_TIERS into PrizeTier
values; everything that needs prize places, a rank's tier or the points still missing builds on PrizeTable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PrizeTier:
    """A rank band [first, last] with a name and a prize value in yuan."""

    first: int
    last: int
    name: str
    value: int

    def band(self) -> str:
        """The band as citizens read it: 第 1 名 or 第 2–5 名."""
        return f"第 {self.first} 名" if self.first == self.last else f"第 {self.first}–{self.last} 名"


def validate_tiers(tiers: Iterable[PrizeTier]) -> tuple[PrizeTier, ...]:
    """Return the tiers best band first; raise ValueError naming the first problem."""
    ordered = tuple(sorted(tiers, key=lambda t: (t.first, t.last)))
    if not ordered:
        raise ValueError("at least one prize tier is required")
    expected = 1
    previous_value: int | None = None
    for t in ordered:
        if not t.name or not t.name.strip():
            raise ValueError(f"tier {t.first}-{t.last}: a name is required")
        if t.value < 0:
            raise ValueError(f"tier {t.first}-{t.last}: the prize value must not be negative")
        if t.first > t.last:
            raise ValueError(f"tier {t.first}-{t.last}: first rank after last rank")
        if t.first < expected:
            raise ValueError(f"tier {t.first}-{t.last} overlaps the previous tier")
        if t.first > expected:
            raise ValueError(f"gap in prize tiers: ranks {expected}-{t.first - 1} have no tier")
        if previous_value is not None and t.value > previous_value:
            raise ValueError(f"tier {t.first}-{t.last} pays {t.value}, more than a better rank ({previous_value})")
        previous_value = t.value
        expected = t.last + 1
    return ordered


@dataclass(frozen=True)
class PrizeTable:
    """A validated prize table: tiers best first; `places` ranks win a prize."""

    tiers: tuple[PrizeTier, ...]

    def __init__(self, tiers: Iterable[PrizeTier]) -> None:
        object.__setattr__(self, "tiers", validate_tiers(tiers))

    @property
    def places(self) -> int:
        """How many ranks win a prize (the last rank of the last tier)."""
        return self.tiers[-1].last

    def tier_for(self, rank: int | None) -> PrizeTier | None:
        """The tier that holds a rank among eligible citizens, or None when it wins nothing."""
        if rank is None:
            return None
        return next((t for t in self.tiers if t.first <= rank <= t.last), None)

    def prize_for(self, rank: int | None) -> int:
        """The prize value of a rank (0 when it wins nothing)."""
        tier = self.tier_for(rank)
        return tier.value if tier is not None else 0


def points_to_enter(own: int, prize_rank: int | None, ranked: int, places: int, last_points: int | None) -> int:
    """Return the points an eligible citizen still needs to enter the prize list (0 when already in it).

    With every prize place taken, the citizen must pass the last one: a new award reaches its total later than
    that citizen did, so an equal total loses the tie and one more point is needed. With free places, any
    positive total enters.
    """
    if prize_rank is not None and prize_rank <= places:
        return 0
    if ranked < places or last_points is None:
        return max(1 - own, 0)
    return max(last_points + 1 - own, 1)
