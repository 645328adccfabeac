"""`rewards demo`: seed a synthetic city — citizens, weeks of reports with photos, verdicts, duplicates, progress
through dispatch and closing, a voided fraud — through the real flows, so every row, award and board entry is
produced exactly as in production.

The city is planned first, as a pure function of the plan and its random seed (`plan_city`: every command with
the instant it happens), then carried out in time order through `CaseFlows.handle` on a clock that walks through
the seeded weeks, one unit of work per day (a few dozen transactions in all, each committing a day).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select

from rewards.bootstrap import Container, bootstrap
from rewards.cases import lifecycle as lc
from rewards.cases.commands import Actor, CaseCommand, ChangeStatus, GiveVerdict, ReportCase, Reporter, VoidCase
from rewards.cases.models import Case, Citizen
from rewards.clock import FixedClock, IsoWeek, week_of
from rewards.engagement import rating_rules as rr
from rewards.engagement.ratings import RatingService
from rewards.flows import CaseFlows
from rewards.scoring.ledger import LedgerEntry
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
STREETS: dict[str, tuple[str, ...]] = {
    "城关区": ("张掖路", "庆阳路", "东岗西路", "南昌路", "雁滩路", "皋兰路"),
    "七里河区": ("西津东路", "建西东路", "小西湖东街", "华林路"),
    "西固区": ("西固中路", "合水路", "福利路", "玉门街"),
    "安宁区": ("安宁西路", "北滨河西路", "万新路", "培黎街"),
    "红古区": ("平安路", "红山路", "海石湾大道"),
    "永登县": ("城关大街", "东山路", "民乐路"),
    "皋兰县": ("兰泉路", "石洞大道", "新华街"),
    "榆中县": ("栖云北路", "兴隆路", "环城路"),
}
DESCRIPTIONS: dict[str, tuple[str, ...]] = {  # what citizens write, by category
    "street_lamp": ("路灯不亮，晚上这一段一片漆黑", "路灯灯罩破裂，有玻璃掉下来", "路灯白天一直亮着"),
    "overflowing_bin": ("垃圾桶满了没人清运，垃圾堆到地上", "垃圾箱周围堆满垃圾袋，有异味"),
    "illegal_ad": ("电线杆和墙上贴满小广告", "墙面被喷涂办证电话", "公交站牌上贴满小广告"),
    "road_damage": ("路面塌陷出一个大坑，车辆绕行", "人行道地砖松动翘起", "路面大面积裂缝"),
    "manhole_cover": ("井盖丢失，只放了一个锥桶", "井盖破损下陷，很危险"),
    "street_vending": ("流动摊贩占道经营，行人只能走机动车道", "店外摆摊占用人行道"),
    "debris": ("建筑材料堆在人行道上", "砖块和沙子乱堆，占了半条路"),
    "greenery_damage": ("行道树被折断", "绿化带被踩踏，草皮枯死"),
    "illegal_parking": ("车辆停在人行横道上", "机动车长期占用人行道停放"),
    "waterlogging": ("雨后路面积水很深，车辆无法通行", "下穿通道积水，行人过不去"),
}
DEMO_PHOTOS = frozenset(DESCRIPTIONS)  # rewards/web/static/demo/<code>.svg, served by the service itself
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
INVALID_REASONS = ("不属于城市管理范围", "照片无法反映所述问题", "现场核查无此问题")
VALIDATOR = Actor("指挥中心演示坐席", "console")
CITY = Actor("city-case-system", "intake")
DUPLICATE_SHARE = 0.08  # reports that are a second report of a problem someone reported shortly before
DUPLICATE_SHARE_IN_QUEUE = 0.3  # among the reports still waiting, so the queue shows duplicate suspects
INVALID_SHARE = 0.10
PENDING_TODAY = 0.5  # share of today's reports still waiting in the queue
WINDOW = timedelta(days=2)  # a second report comes within this of the first (inside the duplicate hint window)
QUEUE_AT_LEAST = 16  # the latest reports always wait in the queue, whatever the hour the demo starts
REGULAR_SHARE = 0.08  # the regular reporter's share of the reports (milestones on 我的)
DEMO_DEADLINE = timedelta(hours=36)  # the case system's deadline for handling, counted from the dispatch


@dataclass(frozen=True)
class DemoPlan:
    """How big the synthetic city is: few, dense weeks (each a full prize list), seeded in seconds."""

    citizens: int = 3000
    weeks: int = 2
    reports_per_day: int = 30
    seed: int = 20261130


@dataclass(frozen=True)
class Event:
    """One command of the plan and the instant it happens."""

    at: datetime
    command: CaseCommand
    actor: Actor


@dataclass
class CityPlan:
    """Every event of the seeded weeks, in time order, and the day each belongs to (for one unit of work a day)."""

    events: list[Event] = field(default_factory=list)
    reports: int = 0

    def days(self, start: datetime) -> Iterator[list[Event]]:
        """The events grouped by day since `start`, in order."""
        batch: list[Event] = []
        day = 0
        for event in self.events:
            index = int((event.at - start) / timedelta(days=1))
            if index != day and batch:
                yield batch
                batch = []
            day = index
            batch.append(event)
        if batch:
            yield batch


def fake_name(rng: random.Random) -> str:
    """Return a plausible Chinese name."""
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def fake_phone(rng: random.Random) -> str:
    """Return a plausible mobile number."""
    return rng.choice(("138", "139", "151", "177", "186", "199")) + f"{rng.randrange(10**8):08d}"


def photo_url(category: str) -> tuple[str, ...]:
    """The demo picture of a category, served by the service itself (none for a category without one)."""
    return (f"/static/web/demo/{category}.svg",) if category in DEMO_PHOTOS else ()


def is_seeded(container: Container) -> bool:
    """Return True when the database already holds cases."""
    with container.read() as session:
        return bool(session.scalar(select(func.count(Case.id))))


def showcase_citizen(container: Container) -> str | None:
    """The openid to sign in as first: this week's leading verified citizen (else anyone with points)."""
    week = str(week_of(container.clock.now(), container.settings.tz))
    points = func.sum(LedgerEntry.points)
    with container.read() as session:
        for this_week_only in (True, False):
            stmt = select(Citizen.openid).join(LedgerEntry, LedgerEntry.citizen_id == Citizen.id)
            stmt = stmt.where(Citizen.verified.is_(True), LedgerEntry.week == week) if this_week_only else stmt
            found = session.scalar(stmt.group_by(Citizen.id, Citizen.openid).order_by(points.desc(), Citizen.id))
            if found is not None:
                return found
    return None


def first_week(now: datetime, container: Container, weeks: int) -> IsoWeek:
    """The first seeded week: `weeks` finished weeks before the current one."""
    week = week_of(now, container.settings.tz)
    for _ in range(weeks):
        week = week.previous()
    return week


def seed(container: Container, plan: DemoPlan, now: datetime, progress: Callable[[int, int], None]) -> IsoWeek:
    """Seed `plan.weeks` finished weeks plus the current week up to `now`; return the first seeded week.

    `progress(done, total)` is called after each day with the number of reports seeded so far and in all.
    """
    first = first_week(now, container, plan.weeks)
    start = first.start(container.settings.tz)  # Monday 00:00 in the program's zone, as UTC
    categories = [c.code for c in container.settings.categories]
    city = plan_city(plan, categories, start, now)
    clock = FixedClock(start)
    # the same flows as production, on a clock that walks through the seeded weeks
    scoring = ScoringService(container.program.rules, container.settings.tz, clock, container.sink)
    flows = CaseFlows(container.settings.categories, clock, scoring, container.sink)
    done = 0
    progress(0, city.reports)
    for day in city.days(start):
        with container.uow() as uow:
            for event in day:
                clock.set(event.at)
                flows.handle(uow, event.command, event.actor)
        done += sum(1 for e in day if isinstance(e.command, ReportCase))
        progress(done, city.reports)
    seed_ratings(container, scoring, clock, now, random.Random(plan.seed + 14))
    return first


def plan_city(plan: DemoPlan, categories: list[str], start: datetime, now: datetime) -> CityPlan:
    """Every report, verdict, status change and the one void of the seeded weeks (pure: the plan and its seed)."""
    rng = random.Random(plan.seed)
    reports = plan_reports(plan, categories, start, now, rng)
    today = start + timedelta(days=(now - start).days)
    events = [Event(r.reported_at, r, CITY) for r, _ in reports]
    voided = False
    for index, (report, original) in enumerate(reports):
        if index >= len(reports) - QUEUE_AT_LEAST or (report.reported_at >= today and rng.random() < PENDING_TODAY):
            continue  # waits in the validators' queue
        verdict_at = report.reported_at + timedelta(minutes=rng.randint(15, 150))
        if verdict_at >= now - timedelta(minutes=5):
            continue
        verdict = _verdict(rng, report.case_id, original)
        events.append(Event(verdict_at, verdict, VALIDATOR))
        if verdict.verdict != "valid":
            continue
        void_at = verdict_at + timedelta(hours=20)
        if not voided and report.reported_at >= start + timedelta(days=3) and void_at < now:
            voided = True  # one staged photo found out the next day: filed, then voided, points reversed
            events.append(Event(void_at, VoidCase(report.case_id, "经核查为摆拍的虚假举报"), VALIDATOR))
            continue
        events += _progress(rng, report.case_id, verdict_at, now)
    events.sort(key=lambda e: e.at)
    return CityPlan(events, len(reports))


def plan_reports(
    plan: DemoPlan, categories: list[str], start: datetime, now: datetime, rng: random.Random
) -> list[tuple[ReportCase, ReportCase | None]]:
    """The reports, in time order, each with the earlier report it repeats (a second report of one problem)."""
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
    # one regular (demo-openid-00000, verified) reports often enough to reach milestones: 10 valid reports, the
    # prize list, the top of a district (rewards/engagement/milestone_rules.py); usually this week's leader too
    citizens[0] = replace(citizens[0], verified=True)
    weights[0] = sum(weights) * REGULAR_SHARE
    instants = report_instants(plan, start, now, random.Random(plan.seed + 1))
    reports: list[tuple[ReportCase, ReportCase | None]] = []
    for index, at in enumerate(instants):
        case_id = f"LZ{at:%Y%m%d}{index + 1:06d}"
        # a second report of a problem names the first report of it, never another second report; the queue
        # gets more of them, so the demo shows the duplicate suspects
        recent = [r for r, o in reports[-plan.reports_per_day * 2 :] if o is None and r.reported_at >= at - WINDOW]
        share = DUPLICATE_SHARE_IN_QUEUE if index >= len(instants) - QUEUE_AT_LEAST else DUPLICATE_SHARE
        original = rng.choice(recent) if recent and rng.random() < share else None
        who = None if rng.random() < 0.03 else rng.choices(citizens, weights)[0]
        if original is not None:
            reports.append((_second_report(rng, case_id, at, who, original), original))
        else:
            reports.append((_report(rng, case_id, at, who, categories), None))
    return reports


def report_instants(plan: DemoPlan, start: datetime, now: datetime, rng: random.Random) -> list[datetime]:
    """When each report comes in: reports_per_day a day, 07:00 to 22:00, from `start` until shortly before `now`."""
    spacing = 15 * 3600 // plan.reports_per_day
    instants = []
    for day in range((now - start).days + 1):  # the current, partial day too, so this week's board is not empty
        day_start = start + timedelta(days=day)
        for n in range(plan.reports_per_day):
            at = day_start + timedelta(hours=7, seconds=n * spacing + rng.randrange(min(600, spacing)))
            if at < now - timedelta(minutes=10):
                instants.append(at)
    return instants


def _report(rng: random.Random, case_id: str, at: datetime, who: Reporter | None, categories: list[str]) -> ReportCase:
    district = (who.district if who else None) or rng.choice(list(DISTRICTS))
    lat, lon = DISTRICTS[district]
    category = rng.choice(categories)
    street = rng.choice(STREETS[district])
    return ReportCase(
        case_id=case_id,
        category=category,
        reported_at=at,
        reporter=who,
        description=rng.choice(DESCRIPTIONS.get(category, ("市民随手拍上报",))),
        lat=round(lat + rng.uniform(-0.02, 0.02), 6),
        lon=round(lon + rng.uniform(-0.02, 0.02), 6),
        coord_system="gcj02",
        address=f"{district}{street}{rng.randint(1, 300)}号附近",
        district=district,
        photos=photo_url(category),
    )


def _second_report(
    rng: random.Random, case_id: str, at: datetime, who: Reporter | None, original: ReportCase
) -> ReportCase:
    """Someone else reporting the same problem a little later, a few dozen metres away."""
    assert original.lat is not None and original.lon is not None
    return ReportCase(
        case_id=case_id,
        category=original.category,
        reported_at=at,
        reporter=who,
        description=rng.choice(DESCRIPTIONS.get(original.category, ("市民随手拍上报",))),
        lat=round(original.lat + rng.uniform(-0.0009, 0.0009), 6),
        lon=round(original.lon + rng.uniform(-0.0009, 0.0009), 6),
        coord_system="gcj02",
        address=original.address,
        district=original.district,
        photos=original.photos,
    )


def _verdict(rng: random.Random, case_id: str, original: ReportCase | None) -> GiveVerdict:
    if original is not None:
        return GiveVerdict(case_id, "duplicate", duplicate_of=original.case_id, reason="与先前举报为同一问题")
    if rng.random() < INVALID_SHARE:
        return GiveVerdict(case_id, "invalid", reason=rng.choice(INVALID_REASONS))
    return GiveVerdict(case_id, "valid", reason="情况属实，予以立案")


def _progress(rng: random.Random, case_id: str, filed_at: datetime, now: datetime) -> list[Event]:
    """Dispatch within hours, resolve within a day or so, close after checking; nothing past `now`."""
    department = rng.choice(DEPARTMENTS)
    when = filed_at
    events = []
    for status, low, high in ((lc.DISPATCHED, 30, 240), (lc.RESOLVED, 240, 1800), (lc.CLOSED, 120, 1440)):
        when = when + timedelta(minutes=rng.randint(low, high))
        if when >= now:
            break
        # the case system sends the deadline for handling with the dispatch (on-time rates on /stats)
        deadline = when + DEMO_DEADLINE if status == lc.DISPATCHED else None
        events.append(Event(when, ChangeStatus(case_id, status, when, department, None, deadline), CITY))
    return events


# --- satisfaction ratings (issue 14): reporters rate some handled reports, through the real RatingService --------

RATING_SHARE = 0.4  # of resolved or closed reports with a reporter
RATING_MIX = ((rr.SATISFIED, 0.66), (rr.BASIC, 0.22), (rr.UNSATISFIED, 0.12))
RATING_COMMENTS = {
    rr.SATISFIED: ("处理很及时，点赞！", "当天就修好了，谢谢", "效率很高"),
    rr.BASIC: ("处理了，但用了好几天", "基本解决，还有一点没清理干净"),
    rr.UNSATISFIED: (
        "垃圾只清了一半，旁边还堆着",
        "路灯修好两天又不亮了",
        "摊贩白天走了晚上又来",
        "坑只是填了沙土，下雨又陷了",
    ),
}


def seed_ratings(
    container: Container, scoring: ScoringService, clock: FixedClock, now: datetime, rng: random.Random
) -> int:
    """Rate a share of the handled reports a little after they were resolved or closed; return how many.

    The first rating is a 不满意 with a comment (a follow-up item in the console); the showcase citizen keeps one
    handled report unrated, so 我的 shows the rating form.
    """
    settings = container.settings
    ratings = RatingService(
        container.db, clock, scoring, settings.rating_window_days, settings.rating_comment_max_chars
    )
    with container.read() as session:
        rows = session.execute(
            select(Case.case_id, Citizen.openid, Case.status_at)
            .join(Citizen, Citizen.id == Case.reporter_id)
            .where(Case.status.in_(sorted(rr.RATEABLE_STATES)), Citizen.snapshot_user.is_(False))
            .order_by(Case.status_at, Case.id)
        ).all()
    keep = showcase_citizen(container)
    kept = next((case_id for case_id, openid, _ in reversed(rows) if openid == keep), None)
    planned: list[tuple[datetime, str, str]] = []
    for case_id, openid, status_at in rows:
        at = status_at + timedelta(minutes=rng.randint(20, 3 * 24 * 60))
        if (
            case_id != kept
            and rng.random() < RATING_SHARE
            and at < min(now, rr.window_closes(status_at, settings.rating_window_days))
        ):
            planned.append((at, case_id, openid))
    planned.sort()
    for n, (at, case_id, openid) in enumerate(planned):
        level = rr.UNSATISFIED if n == 0 else rng.choices([lv for lv, _ in RATING_MIX], [w for _, w in RATING_MIX])[0]
        commented = n == 0 or rng.random() < (0.75 if level == rr.UNSATISFIED else 0.2)
        clock.set(at)
        ratings.rate(
            openid, case_id, level, rng.choice(RATING_COMMENTS[level]) if commented else None, rr.CHANNEL_WECHAT
        )
    return len(planned)


# --- 公示, objections, 定榜 and prize claims (issue 12), through the real ReviewService ------------------------------

REVIEWER = Actor("演示坐席", "console")


def seed_review(container: Container, weeks: int, now: datetime) -> list[str]:
    """Put the seeded weeks through the review, idempotently: every week before last was published when it ended
    (the scheduler's Monday) and is final by now, with claim codes (one handed over); last week is in 公示 with one
    open objection (by the showcase citizen) and one upheld (its list is at version 2). Returns what it did."""
    tz = container.settings.tz
    last = week_of(now, tz).previous()
    done: list[str] = []
    week = first_week(now, container, weeks)
    while week < last:
        # a container whose clock stands at the week's publication time: its window has long closed by now
        then = bootstrap(
            container.settings,
            clock=FixedClock(week.end(tz) + timedelta(hours=1)),
            engine=container.engine,
            redis_client=container.redis,
        )
        then.closer.close(week)
        then.publishing.publish(str(week))
        if container.review.status(str(week)).phase != "final":
            container.review.finalize(str(week))
        claims = container.review.claims(str(week))
        if week.next() == last and claims and not any(c.redeemed_at for c in claims):
            keep = showcase_citizen(container)
            handed = next((c for c in claims if _openid(container, c.citizen_id) != keep), claims[0])
            container.review.redeem(handed.code, REVIEWER, week=str(week))
        done.append(f"{week}: final list (定榜), {len(claims)} claim codes")
        week = week.next()
    container.closer.close(last)
    container.publishing.publish(str(last))
    status = container.review.status(str(last))
    if status.phase == "open" and not container.review.objections(str(last), status=None):
        rows = container.review.current(str(last)).rows
        objector = showcase_citizen(container) or "demo-openid-00001"
        others = [r for r in rows if _openid(container, r.citizen_id) != objector]
        second = "demo-openid-00003"  # another citizen objects too: their objection is upheld
        targets = [r for r in others[10:] if _openid(container, r.citizen_id) != second]
        if len(others) >= 4 and targets:
            upheld = container.review.object(
                str(last), targets[0].rank, second, "该市民多次上报同一处路灯，疑似拆分重复上报", "demo"
            )
            container.review.uphold(upheld.id, "disqualify", "经核查确系拆分重复上报，取消本周评奖资格", REVIEWER)
            target = next(r for r in container.review.current(str(last)).rows if r.citizen_id == others[3].citizen_id)
            container.review.object(str(last), target.rank, objector, "照片与上报地点不符，请核查", "demo")
    status = container.review.status(str(last))
    done.append(
        f"{last}: {status.phase_label}, {status.open_objections} open objection(s), version {status.current_version}"
    )
    return done


def _openid(container: Container, citizen_id: int) -> str | None:
    with container.read() as session:
        citizen = session.get(Citizen, citizen_id)
        return citizen.openid if citizen is not None else None
