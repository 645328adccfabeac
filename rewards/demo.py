"""`rewards demo`: seed a synthetic city — districts, departments, citizens, weeks of reports — through the real
flows, so every row, award and board entry is produced exactly as in production."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from rewards.bootstrap import Container
from rewards.cases import lifecycle as lc
from rewards.cases.commands import Actor, ChangeStatus, GiveVerdict, ReportCase, Reporter, VoidCase
from rewards.cases.models import Case
from rewards.clock import FixedClock, IsoWeek, week_of
from rewards.db import UnitOfWork
from rewards.flows import CaseFlows
from rewards.scoring.service import ScoringService

DISTRICTS: dict[str, tuple[float, float]] = {  # district -> (lat, lon) of its centre, GCJ-02 as WeChat maps give
    "城关区": (36.0611, 103.8343),
    "七里河区": (36.0660, 103.7856),
    "西固区": (36.0886, 103.6280),
    "安宁区": (36.1039, 103.7190),
    "红古区": (36.3456, 102.8593),
    "永登县": (36.7364, 103.2604),
    "皋兰县": (36.3318, 103.9474),
    "榆中县": (35.8437, 104.1128),
}
DEPARTMENTS = (
    [
        f"{d}{unit}"
        for d in ("城关区", "七里河区", "西固区", "安宁区")
        for unit in ("城管局", "市政所", "环卫所", "园林所", "交警大队")
    ]
    + [f"{d}综合执法局" for d in ("红古区", "永登县", "皋兰县", "榆中县")]
    + ["市供电公司", "市水务集团"]
)
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国红梅玉兰志文斌海燕晨宇浩然子轩欣怡梓涵"
VALIDATOR = Actor("指挥中心演示坐席", "console")
CITY = Actor("city-case-system", "intake")


@dataclass(frozen=True)
class DemoPlan:
    """How big the synthetic city is."""

    citizens: int = 2000
    weeks: int = 4
    reports_per_day: int = 90
    seed: int = 20261130


def fake_name(rng: random.Random) -> str:
    """Return a plausible Chinese name."""
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def fake_phone(rng: random.Random) -> str:
    """Return a plausible mobile number."""
    return rng.choice(("138", "139", "151", "177", "186", "199")) + f"{rng.randrange(10**8):08d}"


def is_seeded(container: Container) -> bool:
    """Return True when the database already holds cases."""
    with container.read() as session:
        return bool(session.scalar(select(func.count(Case.id))))


def seed(container: Container, plan: DemoPlan, now: datetime, progress: Callable[[int, int], None]) -> IsoWeek:
    """Seed `plan.weeks` finished weeks plus the current week up to `now`; return the first seeded week."""
    rng = random.Random(plan.seed)
    tz = container.settings.tz
    first = week_of(now, tz)
    for _ in range(plan.weeks):
        first = first.previous()
    clock = FixedClock(first.start(tz))
    # the same flows as production, on a clock that walks through the seeded weeks
    scoring = ScoringService(container.program.rules, tz, clock, container.sink)
    flows = CaseFlows(container.settings.categories, clock, scoring, container.sink)
    _seed_days(container, flows, plan, rng, clock, now, progress)
    return first


def _seed_days(
    container: Container,
    flows: CaseFlows,
    plan: DemoPlan,
    rng: random.Random,
    clock: FixedClock,
    now: datetime,
    progress: Callable[[int, int], None],
) -> None:
    citizens = [
        Reporter(
            openid=f"demo-openid-{i:05d}",
            name=fake_name(rng),
            phone=fake_phone(rng),
            district=rng.choice(list(DISTRICTS)),
            verified=rng.random() < 0.85,
        )
        for i in range(plan.citizens)
    ]
    weights = [1.0 / (1 + i % 97) for i in range(plan.citizens)]  # a few very active citizens, a long tail
    categories = [c.code for c in container.settings.categories]
    start = clock.now()  # Monday 00:00 in the program's zone, as UTC
    days = (now - start).days + 1  # the current, partial day too, so this week's board is not empty
    serial = 0
    fraud_done = False
    for day in range(days):
        day_start = start + timedelta(days=day)
        reports: list[str] = []
        with container.uow() as uow:
            for n in range(plan.reports_per_day):
                at = day_start + timedelta(minutes=10, seconds=n * (22 * 3600 // plan.reports_per_day))
                if at >= now - timedelta(minutes=30):
                    break
                serial += 1
                clock.set(at)
                who = None if rng.random() < 0.03 else rng.choices(citizens, weights)[0]
                district = (who.district if who else None) or rng.choice(list(DISTRICTS))
                lat, lon = DISTRICTS[district]
                case_id = f"LZ{clock.now():%Y%m%d}{serial:06d}"
                report = ReportCase(
                    case_id=case_id,
                    category=rng.choice(categories),
                    reported_at=clock.now(),
                    reporter=who,
                    description="市民随手拍上报",
                    lat=lat + rng.uniform(-0.02, 0.02),
                    lon=lon + rng.uniform(-0.02, 0.02),
                    coord_system="gcj02",
                    district=district,
                    photos=(f"https://img.example.invalid/{case_id}.jpg",),
                )
                flows.report(uow, report, CITY)
                reports.append(case_id)
        clock.set(min(day_start + timedelta(hours=23, minutes=30), now - timedelta(minutes=20)))
        last_day = day == days - 1
        with container.uow() as uow:
            for i, case_id in enumerate(reports):
                if last_day and i >= len(reports) // 2:
                    break  # today's later reports wait in the validators' queue
                roll = rng.random()
                if roll < 0.08 and i > 0:
                    verdict = GiveVerdict(
                        case_id, "duplicate", duplicate_of=reports[i - 1], reason="与先前举报为同一问题"
                    )
                elif roll < 0.18:
                    verdict = GiveVerdict(case_id, "invalid", reason="不属于城市管理范围")
                else:
                    verdict = GiveVerdict(case_id, "valid", reason="情况属实，予以立案")
                flows.verdict(uow, verdict, VALIDATOR)
                if verdict.verdict == "valid":
                    _progress_case(flows, uow, case_id, rng, clock.now(), now)
        if not fraud_done and day >= 3:
            with container.uow() as uow:
                filed = uow.session.scalars(
                    select(Case.case_id).where(Case.case_id.in_(reports), Case.status.in_(lc.FILED_STATES))
                ).first()
                if filed is not None:
                    flows.void(uow, VoidCase(filed, "经核查为摆拍的虚假举报"), VALIDATOR)
                    fraud_done = True
        progress(day + 1, days)


def _progress_case(
    flows: CaseFlows, uow: UnitOfWork, case_id: str, rng: random.Random, filed_at: datetime, now: datetime
) -> None:
    """Move a filed case along dispatch/processing/resolve/close, never past `now`."""
    steps = [lc.DISPATCHED, lc.PROCESSING, lc.RESOLVED, lc.CLOSED][: rng.choice((1, 2, 3, 4, 4))]
    when = filed_at
    department = rng.choice(DEPARTMENTS)
    for status in steps:
        when = when + timedelta(minutes=rng.randint(5, 25))
        if when >= now:
            break
        flows.change_status(uow, ChangeStatus(case_id, status, when, department=department), CITY)
