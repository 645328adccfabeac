"""Leaderboard reads for the API, the web pages and the WeChat reply: board pages and a citizen's standing.

There is one standing path: the Redis boards, and while they are unavailable the same answer computed from the
SQL ledger (the source of truth), marked stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import redis
from sqlalchemy import select

from rewards.cases import service as cases
from rewards.cases.models import Citizen
from rewards.clock import Clock, IsoWeek, week_of
from rewards.config import Settings
from rewards.db import Database
from rewards.errors import Invalid, NotFound, Unavailable
from rewards.leaderboard import keys, scores
from rewards.leaderboard.boards import Boards, BoardsCatchingUp, GenerationMoved, Neighbour, Place, RawStanding
from rewards.leaderboard.ledger_standing import BANNED, NOT_VERIFIED, ledger_standing
from rewards.leaderboard.projector import Projector
from rewards.leaderboard.schemas import (
    BoardKind,
    BoardPageOut,
    BoardRowOut,
    NeighbourOut,
    ScopeStandingOut,
    StandingOut,
)
from rewards.logs import get_logger
from rewards.masking import mask_name
from rewards.prizes import PrizeTable, points_to_enter
from rewards.scoring.rules import is_eligible

MAX_LIMIT = 200
STALE = "排行榜暂时无法刷新，以下排名按积分账本计算"
log = get_logger("leaderboard")


@contextmanager
def redis_reads() -> Iterator[None]:
    """Turn a Redis outage during a read into a 503 the caller may retry."""
    try:
        yield
    except (redis.RedisError, GenerationMoved) as exc:
        raise Unavailable("the leaderboards are unavailable, please retry") from exc


def standing_message(weekly_rank: int | None, prize_rank: int | None, places: int) -> str:
    """The one-line summary of a standing (本周第 3 名，位列获奖名单第 2 位)."""
    if weekly_rank is None:
        return "本周暂未上榜，提交有效举报即可获得积分"
    if prize_rank is not None and prize_rank <= places:
        return f"本周第 {weekly_rank} 名，位列获奖名单第 {prize_rank} 位"
    return f"本周第 {weekly_rank} 名"


class LeaderboardService:
    """Board pages and standings over the Redis boards, with the ledger as the fallback for standings."""

    def __init__(self, db: Database, boards: Boards, projector: Projector, clock: Clock, settings: Settings) -> None:
        self.db = db
        self.boards = boards
        self.projector = projector
        self.clock = clock
        self.settings = settings
        self.prizes: PrizeTable = settings.prize_table

    def current_week(self) -> IsoWeek:
        """This week in the program's time zone."""
        return week_of(self.clock.now(), self.settings.tz)

    def display_names(self, citizen_ids: Iterable[int]) -> dict[int, str]:
        """Masked display names (张*明, else a masked phone, else 匿名市民) by citizen id."""
        ids = set(citizen_ids)
        if not ids:
            return {}
        with self.db.read() as session:
            rows = session.execute(select(Citizen.id, Citizen.name, Citizen.phone).where(Citizen.id.in_(ids)))
            return {cid: scores.display_name(name, phone) for cid, name, phone in rows}

    def page(
        self,
        board: BoardKind = "weekly",
        *,
        week: IsoWeek | None = None,
        district: str | None = None,
        offset: int = 0,
        limit: int = 80,
    ) -> BoardPageOut:
        """One page of a board: rank, masked name, points, eligibility, prize rank and tier per row."""
        if offset < 0:
            raise Invalid("offset must be >= 0", code="invalid_offset")
        if not 1 <= limit <= MAX_LIMIT:
            raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
        label: str | None = None
        if board == "all-time":
            name = keys.ALL_TIME
        else:
            label = str(week or self.current_week())
            if board == "district-weekly":
                if not district or not district.strip():
                    raise Invalid("a district is required", code="invalid_district")
                name = keys.district_weekly(label, district)
            else:
                name = keys.weekly(label)
        with redis_reads():
            raw = self.boards.page(name, offset, limit)
        names = self.display_names(r.citizen_id for r in raw.rows)
        rows = [
            BoardRowOut(
                rank=offset + i + 1,
                name=names.get(r.citizen_id, mask_name(None)),
                points=r.points,
                reached_at=scores.instant_of(r.tick),
                eligible=r.eligible,
                prize_rank=r.prize_rank,
                tier=self.prizes.tier_for(r.prize_rank),
            )
            for i, r in enumerate(raw.rows)
        ]
        return BoardPageOut(
            board=board,
            week=label,
            district=district if board == "district-weekly" else None,
            updated_at=scores.instant_of(raw.updated_tick) if raw.updated_tick is not None else None,
            total=raw.total,
            offset=offset,
            limit=limit,
            prize_places=self.prizes.places,
            rows=rows,
        )

    def prize_list(self, *, week: IsoWeek | None = None, offset: int = 0, limit: int = 80) -> BoardPageOut:
        """A week's prize list: the eligible places offset+1 .. offset+limit (prize_rank, tier), with the ineligible
        citizens who rank among them marked (eligible false, no prize_rank): they never take a prize place.

        `rank` stays the place on the full weekly board; `offset`/`limit` count prize places, so a page may hold
        more than `limit` rows. Prize place p sits at full position p-1 or later, so the full board is read from
        position offset-1 on, in slices (each atomic, with its own eligibility and prize ranks), at most 5,000 rows.
        """
        if offset < 0:
            raise Invalid("offset must be >= 0", code="invalid_offset")
        if not 1 <= limit <= MAX_LIMIT:
            raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", code="invalid_limit")
        label, start, last = str(week or self.current_week()), max(offset - 1, 0), offset + limit
        ids: list[int] = []
        rows: list[BoardRowOut] = []
        total, updated, inside, done = 0, None, offset == 0, False
        with redis_reads():
            for first in range(start, start + 5_000, MAX_LIMIT):
                raw = self.boards.page(keys.weekly(label), first, MAX_LIMIT)
                total, updated = raw.total, raw.updated_tick
                for i, r in enumerate(raw.rows):
                    p = r.prize_rank
                    if p is not None and (p <= offset or p > last):
                        inside, done = p == offset, p > last  # ineligible rows after place `offset` are ours
                    elif inside or p is not None:
                        inside, done = True, p == last
                        ids.append(r.citizen_id)
                        tier = self.prizes.tier_for(p)
                        at = scores.instant_of(r.tick)
                        rows.append(
                            BoardRowOut(
                                rank=first + i + 1,
                                name="",
                                points=r.points,
                                reached_at=at,
                                eligible=r.eligible,
                                prize_rank=p,
                                tier=tier,
                            )
                        )
                    if done:
                        break
                if done or len(raw.rows) < MAX_LIMIT:
                    break
        names = self.display_names(ids)
        return BoardPageOut(
            board="weekly",
            week=label,
            district=None,
            updated_at=scores.instant_of(updated) if updated is not None else None,
            total=total,
            offset=offset,
            limit=limit,
            prize_places=self.prizes.places,
            rows=[
                r.model_copy(update={"name": names.get(cid, mask_name(None))}) for cid, r in zip(ids, rows, strict=True)
            ],
        )

    def standing(self, openid: str, *, week: IsoWeek | None = None, neighbours: int = 1) -> StandingOut:
        """Where a citizen stands; while the boards are unavailable or trail the ledger, the same answer computed
        from the ledger, marked stale (never wrong points presented as fresh)."""
        label = str(week or self.current_week())
        if not self.projector.behind(self.settings.standing_stale_after_rows):
            try:
                return self._from_boards(openid, label, neighbours)
            except BoardsCatchingUp:
                pass  # a rebuild's new boards may still miss recent entries: this answer comes from the ledger
            except Unavailable:
                self.projector.update_failed()  # a lost or unreachable board: the projector repairs it
                log.warning("leaderboards unavailable: answering a standing from the ledger")
        with self.db.read() as session:
            found = ledger_standing(session, self.prizes, openid, label)
        if found is None:
            raise NotFound("unknown citizen", code="unknown_citizen")
        return found.model_copy(update={"message": STALE, "stale": True})

    def _from_boards(self, openid: str, week: str, neighbours: int) -> StandingOut:
        """One EVALSHA reads everything (citizen data kept in Redis by the projector and rebuild); a citizen Redis
        does not know yet (created since the projector's last pass) is looked up in SQL, then read by id."""
        found = self.from_redis(openid, week, neighbours)
        return found if found is not None else self.from_sql_and_boards(openid, week, neighbours)

    def from_redis(self, openid: str, week: str, neighbours: int = 1) -> StandingOut | None:
        """The standing from one script call, no SQL; None when Redis holds no citizen data for the openid."""
        with redis_reads():
            raw = self.boards.standing_of(openid, week, self.prizes.places, neighbours)
        if raw is None:
            return None
        near = [n for p in (raw.weekly, raw.all_time) for n in (*p.above, *p.below)]
        names = {n.citizen_id: n.name for n in near if n.name}
        unnamed = [n.citizen_id for n in near if not n.name]
        if unnamed:  # a neighbour the projector has not restated yet (rare): their names from SQL
            names.update(self.display_names(unnamed))
        return self._standing(raw, bool(raw.eligible), bool(raw.banned), names, week)

    def from_sql_and_boards(self, openid: str, week: str, neighbours: int = 1) -> StandingOut:
        """The standing with the citizen and the neighbours' names read from SQL and the places from Redis."""
        with self.db.read() as session:
            citizen = cases.get_citizen(session, openid)
            cid, verified, banned = citizen.id, citizen.verified, citizen.banned
        with redis_reads():
            raw = self.boards.standing(cid, week, self.prizes.places, neighbours)
        near_ids = [n.citizen_id for p in (raw.weekly, raw.all_time) for n in (*p.above, *p.below)]
        return self._standing(raw, is_eligible(verified, banned), banned, self.display_names(near_ids), week)

    def _standing(
        self, raw: RawStanding, eligible: bool, banned: bool, names: dict[int, str], week: str
    ) -> StandingOut:
        places = self.prizes.places
        prize_rank = raw.prize_rank if eligible else None
        to_prize = None
        if eligible:
            to_prize = points_to_enter(raw.week_points, prize_rank, raw.eligible_total, places, raw.last_prize_points)
        on_list = prize_rank is not None and prize_rank <= places
        return StandingOut(
            week=week,
            message=standing_message(raw.weekly.rank, prize_rank, places),
            weekly=_scope(raw.weekly, raw.week_points, names),
            all_time=_scope(raw.all_time, raw.all_time_points, names),
            eligible=eligible,
            eligibility_note=None if eligible else (BANNED if banned else NOT_VERIFIED),
            prize_places=places,
            prize_rank=prize_rank,
            tier=self.prizes.tier_for(prize_rank) if on_list else None,
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
