"""The ranking rule (pure): more points first, then who reached the total first, then the lower citizen id.

"Reached first" is compared at the resolution of one second (REACH_RESOLUTION): two totals reached within the
same whole second (UTC) tie on time and fall to the lower citizen id. The Redis score encodes exactly this rule
(scores.py), so the boards, the weekly snapshot and any brute-force check agree to the member.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rewards.clock import to_utc

REACH_RESOLUTION = timedelta(seconds=1)


@dataclass(frozen=True)
class Standing:
    """A citizen's total in one scope (a week, all time, a district week) and when it was reached."""

    citizen_id: int
    points: int
    reached_at: datetime  # created_at of the latest ledger entry in scope: when the total took its value


def reach_second(at: datetime) -> datetime:
    """Return the instant truncated to the whole UTC second: the resolution at which "reached first" is judged."""
    return to_utc(at).replace(microsecond=0)


def rank_key(s: Standing) -> tuple[int, datetime, int]:
    """Sort key: best first."""
    return (-s.points, reach_second(s.reached_at), s.citizen_id)


def rank(standings: Iterable[Standing]) -> list[Standing]:
    """Return standings with points > 0, best first; ranks are strict (position + 1)."""
    return sorted((s for s in standings if s.points > 0), key=rank_key)


def totals_from_entries(entries: Iterable[tuple[int, int, datetime]]) -> list[Standing]:
    """Fold (citizen_id, points, created_at) ledger lines into one Standing per citizen."""
    points: dict[int, int] = {}
    reached: dict[int, datetime] = {}
    for citizen_id, delta, created_at in entries:
        points[citizen_id] = points.get(citizen_id, 0) + delta
        if citizen_id not in reached or created_at > reached[citizen_id]:
            reached[citizen_id] = created_at
    return [Standing(cid, pts, reached[cid]) for cid, pts in points.items()]
