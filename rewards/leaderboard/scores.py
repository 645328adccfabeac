"""The sorted-set score (pure): points and first-reach time in one double, exactly; and a citizen's summary.

Encoding (read with ascending ZRANK/ZRANGE)::

    tick  = whole seconds from EPOCH (2020-01-01 00:00 UTC) to reached_at, 0 <= tick < 2^32   (good until 2156)
    score = -(points * 2^32 + (2^32 - 1 - tick))

* More points -> larger magnitude -> more negative -> earlier in ascending order.
* Equal points: an earlier tick -> larger (2^32 - 1 - tick) -> more negative -> earlier.
* Equal points and tick -> equal score -> Redis orders by member, and members are 12-digit zero-padded citizen
  ids, so the lower citizen id comes first. That is the whole ranking rule of ranking.py, at its 1 s resolution.

Exactness: |score| <= MAX_POINTS * 2^32 + 2^32 - 1 = 2^53 - 1 when points <= MAX_POINTS = 2^21 - 1 = 2,097,151,
and every integer of magnitude below 2^53 is a double exactly. Anything beyond is refused with ScoreOverflow
(a loud error, never a silently wrong rank): totals above MAX_POINTS, instants before EPOCH or after 2156.
Scores cross the wire as decimal integers (Python ints here, string.format('%.17g') in Lua), never tostring().

A citizen's summary (one Redis hash per citizen) also holds what a standing shows of them (``Profile``: masked
display name, banned flag, besides the district and eligibility the boards use), so that a standing is one script
call with no SQL; ``profile_fields`` is its layout. A summary without the ``b`` field has no profile yet.

A citizen's summary (one Redis hash per citizen) records which entries were applied and, per scope ("at" for
all time, else the ISO week), the points and the reached tick; the board placement is a pure function of it.
``fold`` + ``placements`` are the reference the Lua apply script mirrors, and rebuild/check are built on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rewards.leaderboard.keys import ALL_TIME, boards_of
from rewards.leaderboard.ranking import REACH_RESOLUTION
from rewards.masking import mask_name, mask_phone

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
TICK_BITS = 32
TICKS = 1 << TICK_BITS
MAX_TICK = TICKS - 1
MAX_POINTS = (1 << (53 - TICK_BITS)) - 1  # 2,097,151
MAX_MAGNITUDE = (1 << 53) - 1


class ScoreOverflow(ValueError):
    """A total or an instant the score cannot encode exactly; refused rather than ranked wrongly."""


def tick_of(at: datetime) -> int:
    """Return the whole seconds from EPOCH to an instant (the reach-time resolution); refuse out-of-range.

    Equal to ``(reach_second(at) - EPOCH) // REACH_RESOLUTION`` (a property test holds them together): a timedelta's
    days and seconds are already the floor of it, whatever its microseconds, so no truncated datetime is built on
    the award path (a seventh of the client's work per award, bench/e2e.py)."""
    delta = (at if at.tzinfo is not None else at.replace(tzinfo=UTC)) - EPOCH  # naive is UTC, as to_utc() says
    tick = delta.days * 86_400 + delta.seconds
    if not 0 <= tick <= MAX_TICK:
        raise ScoreOverflow(f"instant {at.isoformat()} is outside the score's range ({EPOCH.year}..2156)")
    return tick


def instant_of(tick: int) -> datetime:
    """Return the instant (aware UTC) a tick stands for."""
    return EPOCH + tick * REACH_RESOLUTION


def encode(points: int, tick: int) -> int:
    """Return the score of a positive total reached at a tick; raise ScoreOverflow beyond exact range."""
    if points > MAX_POINTS:
        raise ScoreOverflow(f"{points} points exceed the largest exactly rankable total {MAX_POINTS}")
    if points < 1:
        raise ValueError(f"only positive totals are ranked: {points}")
    if not 0 <= tick <= MAX_TICK:
        raise ScoreOverflow(f"tick {tick} is outside 0..{MAX_TICK}")
    return -(points * TICKS + (MAX_TICK - tick))


def decode(score: float | int) -> tuple[int, int]:
    """Return (points, tick) of a score read back from Redis."""
    if isinstance(score, float) and not score.is_integer():
        raise ScoreOverflow(f"not an encoded score: {score!r}")
    magnitude = -int(score)
    if not TICKS <= magnitude <= MAX_MAGNITUDE:
        raise ScoreOverflow(f"not an encoded score: {score!r}")
    points, rest = divmod(magnitude, TICKS)
    return points, MAX_TICK - rest


@dataclass(frozen=True)
class Line:
    """One ledger entry as a summary sees it."""

    entry_id: int
    points: int
    week: str
    created_at: datetime


@dataclass
class Summary:
    """A citizen's applied entries and, per scope ("at" or a week), points and reached tick."""

    district: str = ""  # "" when the citizen has none
    eligible: bool = False
    entry_ids: set[int] = field(default_factory=set)
    points: dict[str, int] = field(default_factory=dict)
    reached: dict[str, int] = field(default_factory=dict)


def fold(lines: Iterable[Line], district: str | None, eligible: bool) -> Summary:
    """Fold a citizen's ledger lines (any order, duplicates ignored) into their summary."""
    s = Summary(district=district or "", eligible=eligible)
    for line in lines:
        if line.entry_id in s.entry_ids:
            continue
        s.entry_ids.add(line.entry_id)
        tick = tick_of(line.created_at)
        for scope in (ALL_TIME, line.week):
            s.points[scope] = s.points.get(scope, 0) + line.points
            s.reached[scope] = max(s.reached.get(scope, tick), tick)
    return s


def placed(s: Summary) -> Iterator[tuple[str, int, int]]:
    """Yield (board name, score, reached tick) for every board where the citizen's total is positive."""
    for scope, points in s.points.items():
        if points <= 0:
            continue  # a total of zero or less leaves the board
        tick = s.reached[scope]
        score = encode(points, tick)
        for name in boards_of(scope, s.district, s.eligible):
            yield name, score, tick


def placements(s: Summary) -> dict[str, int]:
    """Return board name -> score for every board where the citizen's total is positive."""
    return {name: score for name, score, _ in placed(s)}


def summary_fields(s: Summary) -> dict[str, str]:
    """Return the Redis hash fields of a summary (the layout the Lua scripts read and write)."""
    fields = {"d": s.district, "el": "1" if s.eligible else "0"}
    for scope, points in s.points.items():
        fields[f"p:{scope}"] = str(points)
        fields[f"r:{scope}"] = str(s.reached[scope])
    for entry_id in s.entry_ids:
        fields[str(entry_id)] = "1"
    return fields


def summary_from_fields(fields: Mapping[str, str]) -> Summary:
    """Parse a summary hash read from Redis."""
    s = Summary(district=fields.get("d", ""), eligible=fields.get("el") == "1")
    for name, value in fields.items():
        if name.isdigit():
            s.entry_ids.add(int(name))
        elif name.startswith("p:"):
            s.points[name[2:]] = int(value)
        elif name.startswith("r:"):
            s.reached[name[2:]] = int(value)
    return s


def display_name(name: str | None, phone: str | None) -> str:
    """Return the masked name a public list shows: 张*明, else a masked phone, else 匿名市民."""
    return mask_name(name) if name else (mask_phone(phone) or mask_name(None))


@dataclass(frozen=True)
class Profile:
    """What a standing shows of a citizen, kept in Redis beside their points (never a raw name or phone)."""

    openid: str
    name: str  # masked display name
    district: str  # "" when none
    eligible: bool
    banned: bool


def profile_of(
    openid: str, name: str | None, phone: str | None, district: str | None, eligible: bool, banned: bool
) -> Profile:
    """Return the Profile of a citizen row's values."""
    return Profile(openid, display_name(name, phone), district or "", eligible, banned)


def profile_fields(p: Profile) -> dict[str, str]:
    """Return the summary hash fields of a profile (district and eligibility are the boards' own fields)."""
    return {"d": p.district, "el": "1" if p.eligible else "0", "n": p.name, "b": "1" if p.banned else "0"}


def profile_from_fields(openid: str, fields: Mapping[str, str]) -> Profile | None:
    """Parse the profile of a summary hash read from Redis; None when it has none."""
    if "b" not in fields:
        return None
    return Profile(openid, fields.get("n", ""), fields.get("d", ""), fields.get("el") == "1", fields["b"] == "1")
