"""Prize tiers by rank band (pure)."""

from __future__ import annotations

from collections.abc import Sequence

TierSpec = tuple[int, int, int]  # (first rank, last rank, prize value)


def validate_tiers(tiers: Sequence[TierSpec]) -> None:
    """Raise ValueError unless bands start at 1, are contiguous, do not overlap and never pay a better rank less."""
    if not tiers:
        raise ValueError("at least one prize tier is required")
    ordered = sorted(tiers)
    expected = 1
    previous_value: int | None = None
    for first, last, value in ordered:
        if first > last:
            raise ValueError(f"tier {first}-{last}: first rank after last rank")
        if first < expected:
            raise ValueError(f"tier {first}-{last} overlaps the previous tier")
        if first > expected:
            raise ValueError(f"gap in prize tiers: ranks {expected}-{first - 1} have no tier")
        if previous_value is not None and value > previous_value:
            raise ValueError(f"tier {first}-{last} pays {value}, more than a better rank ({previous_value})")
        previous_value = value
        expected = last + 1


def prize_places(tiers: Sequence[TierSpec]) -> int:
    """Return how many ranks win a prize (the last rank of the last tier)."""
    return max(last for _, last, _ in tiers)


def tier_index(rank: int, tiers: Sequence[TierSpec]) -> int | None:
    """Return the index of the tier that holds this rank, or None when the rank wins nothing."""
    for index, (first, last, _) in enumerate(sorted(tiers)):
        if first <= rank <= last:
            return index
    return None


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
