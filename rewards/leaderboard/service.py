"""Leaderboard reads for the API, the web pages and the WeChat reply: board pages and a citizen's standing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from sqlalchemy import select

from rewards.cases import service as cases
from rewards.cases.models import Citizen
from rewards.clock import IsoWeek, week_of
from rewards.config import PrizeTier, Settings
from rewards.errors import Invalid, NotFound, Unavailable
from rewards.leaderboard import keys, scores, tiers
from rewards.leaderboard.boards import Boards, GenerationMoved, Neighbour, Place
from rewards.leaderboard.ledger_standing import BANNED, NOT_VERIFIED, Placing, ledger_standing
from rewards.leaderboard.schemas import (
    BoardKind,
    BoardPageOut,
    BoardRowOut,
    NeighbourOut,
    ScopeStandingOut,
    StandingOut,
    TierOut,
)
from rewards.logs import get_logger
from rewards.masking import mask_name, mask_phone
from rewards.scoring.ledger import is_eligible

MAX_LIMIT = 200


log = get_logger("leaderboard")


def current_week(container: Any) -> str:
    """Return this week in the program's time zone, e.g. '2026-W48'."""
    return str(week_of(container.clock.now(), container.settings.tz))


def parse_week(text: str | None, container: Any) -> str:
    """Return a normalised ISO week ('2026-W48'); None means this week; anything else is a 422 with the reason."""
    if text is None:
        return current_week(container)
    try:
        return str(IsoWeek.parse(text))
    except ValueError as exc:
        raise Invalid(str(exc), code="invalid_week") from exc


def sorted_tiers(settings: Settings) -> list[PrizeTier]:
    """Return the prize tiers best rank first."""
    return sorted(settings.prize_tiers, key=lambda t: t.first)


def tier_for(prize_rank: int | None, settings: Settings) -> TierOut | None:
    """Return the prize tier of a rank among eligible citizens, or None."""
    if prize_rank is None:
        return None
    ordered = sorted_tiers(settings)
    index = tiers.tier_index(prize_rank, [(t.first, t.last, t.value) for t in ordered])
    if index is None:
        return None
    t = ordered[index]
    return TierOut(first=t.first, last=t.last, name=t.name, value=t.value)


def prize_places(settings: Settings) -> int:
    """Return how many weekly ranks win a prize (80 by default)."""
    return tiers.prize_places([(t.first, t.last, t.value) for t in settings.prize_tiers])


def boards_of(container: Any) -> Boards:
    """Return the container's Boards (or Boards over its Redis when a test sink replaced them)."""
    b = container.boards
    return b if isinstance(b, Boards) else Boards(container.redis, container.settings)


@contextmanager
def redis_reads() -> Iterator[None]:
    """Turn a Redis outage during a read into a 503 the caller may retry."""
    try:
        yield
    except (redis.RedisError, GenerationMoved) as exc:
        raise Unavailable("the leaderboards are unavailable, please retry") from exc


def display_names(container: Any, citizen_ids: Iterable[int]) -> dict[int, str]:
    """Return masked display names (张*明, else a masked phone, else 匿名市民) by citizen id."""
    ids = set(citizen_ids)
    if not ids:
        return {}
    with container.read() as session:
        rows = session.execute(select(Citizen.id, Citizen.name, Citizen.phone).where(Citizen.id.in_(ids)))
        return {cid: mask_name(name) if name else (mask_phone(phone) or mask_name(None)) for cid, name, phone in rows}


def page(
    container: Any,
    board: BoardKind = "weekly",
    *,
    week: str | None = None,
    district: str | None = None,
    offset: int = 0,
    limit: int = 80,
) -> BoardPageOut:
    """Return one page of a board: rank, masked name, points, eligibility, prize rank and tier per row."""
    if offset < 0:
        raise Invalid("offset must be >= 0", code="invalid_offset")
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
    settings = container.settings
    if board == "all-time":
        name, week = keys.ALL_TIME, None
    else:
        week = parse_week(week, container)
        if board == "district-weekly":
            if not district or not district.strip():
                raise Invalid("a district is required", code="invalid_district")
            name = keys.district_weekly(week, district)
        else:
            name = keys.weekly(week)
    with redis_reads():
        raw = boards_of(container).page(name, offset, limit)
    names = display_names(container, (r.citizen_id for r in raw.rows))
    rows = [
        BoardRowOut(
            rank=offset + i + 1,
            name=names.get(r.citizen_id, mask_name(None)),
            points=r.points,
            reached_at=scores.instant_of(r.tick),
            eligible=r.eligible,
            prize_rank=r.prize_rank,
            tier=tier_for(r.prize_rank, settings),
        )
        for i, r in enumerate(raw.rows)
    ]
    return BoardPageOut(
        board=board,
        week=week,
        district=district if board == "district-weekly" else None,
        updated_at=scores.instant_of(raw.updated_tick) if raw.updated_tick is not None else None,
        total=raw.total,
        offset=offset,
        limit=limit,
        prize_places=prize_places(settings),
        rows=rows,
    )


def standing(container: Any, openid: str, *, week: str | None = None, neighbours: int = 1) -> StandingOut:
    """Return a citizen's weekly and all-time rank and points, prize tier, points still needed, and neighbours."""
    week = parse_week(week, container)
    settings = container.settings
    with container.read() as session:
        citizen = cases.get_citizen(session, openid)
        cid, verified, banned = citizen.id, citizen.verified, citizen.banned
    places = prize_places(settings)
    with redis_reads():
        raw = boards_of(container).standing(cid, week, places, neighbours)
    eligible = is_eligible(verified, banned)
    near = [n.citizen_id for p in (raw.weekly, raw.all_time) for n in (*p.above, *p.below)]
    names = display_names(container, near)
    prize_rank = raw.prize_rank if eligible else None
    to_prize = None
    if eligible:
        to_prize = tiers.points_to_enter(raw.week_points, prize_rank, raw.eligible_total, places, raw.last_prize_points)
    if raw.weekly.rank is None:
        message = "本周暂未上榜，提交有效举报即可获得积分"
    elif prize_rank is not None and prize_rank <= places:
        message = f"本周第 {raw.weekly.rank} 名，位列获奖名单第 {prize_rank} 位"
    else:
        message = f"本周第 {raw.weekly.rank} 名"
    return StandingOut(
        week=week,
        message=message,
        weekly=_scope(raw.weekly, raw.week_points, names),
        all_time=_scope(raw.all_time, raw.all_time_points, names),
        eligible=eligible,
        eligibility_note=None if eligible else (BANNED if banned else NOT_VERIFIED),
        prize_places=places,
        prize_rank=prize_rank,
        tier=tier_for(prize_rank, settings),
        points_to_prize=to_prize,
    )


def _scope(place: Place, summary_points: int, names: dict[int, str]) -> ScopeStandingOut:
    def out(ns: list[Neighbour]) -> list[NeighbourOut]:
        return [NeighbourOut(rank=n.rank, name=names.get(n.citizen_id, mask_name(None)), points=n.points) for n in ns]

    return ScopeStandingOut(
        ranked=place.rank is not None,
        rank=place.rank,
        points=place.points if place.points is not None else summary_points,
        total=place.total,
        above=out(place.above),
        below=out(place.below),
    )


STALE = "排行榜暂时无法刷新，以下排名按积分账本计算"


def standing_or_ledger(container: Any, openid: str, *, week: str | None = None) -> StandingOut:
    """The standing from the boards; while Redis is down, the same answer computed from the ledger, marked stale."""
    try:
        return standing(container, openid, week=week)
    except Unavailable:
        log.warning("leaderboards unavailable: answering a standing from the ledger")
    week = parse_week(week, container)
    settings = container.settings
    with container.read() as session:
        found = ledger_standing(session, settings, openid, week)
        if found is None:
            raise NotFound("unknown citizen", code="unknown_citizen")
        citizen = cases.get_citizen(session, openid)
        eligible = is_eligible(citizen.verified, citizen.banned)
    prize_rank = found.prize_rank
    return StandingOut(
        week=week,
        message=STALE,
        weekly=_ledger_scope(found.this_week),
        all_time=_ledger_scope(found.all_time),
        eligible=eligible,
        eligibility_note=found.eligibility_note,
        prize_places=found.prize_places,
        prize_rank=prize_rank,
        tier=tier_for(prize_rank, settings),
        points_to_prize=(0 if prize_rank is not None else found.points_to_prize) if eligible else None,
        stale=True,
    )


def _ledger_scope(placing: Placing) -> ScopeStandingOut:
    return ScopeStandingOut(
        ranked=placing.rank is not None, rank=placing.rank, points=placing.points, total=None, above=[], below=[]
    )
