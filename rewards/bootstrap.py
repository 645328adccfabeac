"""Composition root: the one place that builds every concrete object from Settings; tests pass overrides.

`bootstrap()` takes its collaborators as keyword arguments with production defaults (the engine and Redis from
Settings, the system clock, the Redis boards as the after-commit sink, WeChat or the outbox as the publisher)
and hands each service only the collaborators it uses. Services never see the Container; the edges (routes,
commands, the scheduler process) take what they need from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from rewards.batching.verdicts import VerdictBatcher
from rewards.clock import Clock, SystemClock
from rewards.config import Settings, load_settings
from rewards.db import Database, UnitOfWork, make_engine
from rewards.engagement.milestones import MilestoneService, milestone_rules
from rewards.engagement.ratings import RatingService
from rewards.flows import CaseFlows
from rewards.health import CircuitBreaker
from rewards.http.auth import Principal, TokenTable
from rewards.http.ratelimit import RateLimiter
from rewards.http.replay import ReplayCache
from rewards.http.session import SessionCodec
from rewards.http.state import HttpState
from rewards.leaderboard.boards import Boards
from rewards.leaderboard.projector import Projector
from rewards.leaderboard.rebuild import RebuildReport, rebuild_if_empty
from rewards.leaderboard.service import LeaderboardService
from rewards.leaderboard.weeks import WeekCloser
from rewards.locks import Leases
from rewards.logs import get_logger
from rewards.program import Program
from rewards.publish.jobs import WeeklyJobs
from rewards.publish.port import Publisher
from rewards.publish.service import PublishService
from rewards.publish.wechat import make_publisher
from rewards.redis_client import make_redis
from rewards.review.service import ReviewService
from rewards.scoring.ports import BoardSink
from rewards.scoring.service import ScoringService, rule_settings
from rewards.stats.service import StatsService

log = get_logger("bootstrap")


@dataclass
class Container:
    """Every service of one process, built once; held by the edges, never handed to a service."""

    settings: Settings
    clock: Clock
    db: Database
    redis: redis.Redis
    boards: Boards
    projector: Projector
    sink: BoardSink
    program: Program
    scoring: ScoringService
    flows: CaseFlows
    verdicts: VerdictBatcher  # concurrent verdicts given together (one transaction, one COMMIT)
    leaderboard: LeaderboardService
    closer: WeekCloser
    publisher: Publisher
    publishing: PublishService
    jobs: WeeklyJobs
    leases: Leases
    redis_breaker: CircuitBreaker
    http: HttpState
    replay: ReplayCache  # signed callbacks (WeChat) admitted once per (timestamp, nonce)
    review: ReviewService  # 公示: objections, decisions, list versions, 定榜 and prize claims
    milestones: MilestoneService  # derived milestones (/me, /rules) and their once-only WeChat mention
    ratings: RatingService  # satisfaction ratings of handled reports (我的, API, WeChat) and their follow-ups
    stats: StatsService  # the public city-management record (/stats), sealed per closed period in SQL

    @property
    def engine(self) -> Engine:
        """The SQL engine."""
        return self.db.engine

    @contextmanager
    def uow(self) -> Iterator[UnitOfWork]:
        """One transaction (Database.uow)."""
        with self.db.uow() as uow:
            yield uow

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (Database.read)."""
        with self.db.read() as session:
            yield session

    def prepare(self) -> RebuildReport | None:
        """Prepare derived state before serving: rebuild the boards when Redis holds none (empty or flushed)."""
        try:
            report = rebuild_if_empty(self.db, self.boards)
        except Exception as exc:  # derived state: serve anyway, `rewards rebuild` repairs it
            log.warning("could not rebuild the leaderboards at start-up: %r", exc)
            return None
        if report is not None:
            log.info("leaderboards rebuilt at start-up: %s citizens, %s entries", report.citizens, report.entries)
        return report

    def start_projector(self) -> None:
        """Keep the boards in line with the ledger from a background thread (long-running processes only)."""
        self.projector.start()

    def close(self) -> None:
        """Release connections (and stop the projector thread, if it runs)."""
        self.projector.stop()
        self.verdicts.close()  # the verdicts still waiting are given first
        self.db.close()
        with suppress(Exception):  # closing a dead connection is not worth failing shutdown
            self.redis.close()


def token_table(settings: Settings) -> TokenTable:
    """The configured API tokens and who each one authenticates."""
    return TokenTable({token: Principal(t.name, t.role) for token, t in settings.api_tokens.items()})


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    redis_client: redis.Redis | None = None,
    sink: BoardSink | None = None,
    publisher: Publisher | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Container:
    """Build every service; each argument overrides the part Settings would build."""
    settings = settings or load_settings()
    clock = clock or SystemClock()
    db = Database(engine or make_engine(settings.database_url))
    client = redis_client if redis_client is not None else make_redis(settings)
    # one per process: the boards, the projector and the rate limiter share it
    redis_breaker = CircuitBreaker("redis", settings.redis_breaker_failures, settings.redis_breaker_open_seconds)
    boards = Boards(client, settings, redis_breaker)
    projector = Projector(db, boards, clock, settings.projector_interval_seconds)
    db.when_effects_fail(lambda _failures: projector.update_failed())
    sink = sink if sink is not None else boards
    program = Program(rule_settings(settings), settings.prize_table, settings.timezone)
    scoring = ScoringService(program.rules, settings.tz, clock, sink)
    flows = CaseFlows(settings.categories, clock, scoring, sink)
    leases = Leases(client)
    publisher = publisher if publisher is not None else make_publisher(settings, client)
    closer = WeekCloser(db, clock, settings.tz, settings.timezone, program.prizes, boards)
    publishing = PublishService(db, clock, settings, program, publisher, leases, sleep)
    review = ReviewService(db, clock, settings, flows, publishing, leases)
    limiter = RateLimiter(client, settings, clock, redis_breaker)
    return Container(
        settings=settings,
        clock=clock,
        db=db,
        redis=client,
        boards=boards,
        projector=projector,
        sink=sink,
        program=program,
        scoring=scoring,
        flows=flows,
        verdicts=VerdictBatcher(db, flows),
        leaderboard=LeaderboardService(db, boards, projector, clock, settings),
        closer=closer,
        publisher=publisher,
        publishing=publishing,
        jobs=WeeklyJobs(db, settings, closer, publishing, leases, finalize=review.run_due),
        leases=leases,
        redis_breaker=redis_breaker,
        http=HttpState(settings, clock, token_table(settings), limiter, SessionCodec(settings)),
        replay=ReplayCache(client, settings.leaderboard_key_prefix, redis_breaker),
        review=review,
        milestones=MilestoneService(db, milestone_rules(settings), clock),
        ratings=RatingService(db, clock, scoring, settings.rating_window_days, settings.rating_comment_max_chars),
        stats=StatsService(
            db,
            clock,
            settings.tz,
            timedelta(hours=settings.stats_settle_hours),
            settings.stats_trend_weeks,
            timedelta(seconds=settings.stats_live_seconds),
        ),
    )
