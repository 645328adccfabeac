"""公示 on the citizen side: the week page's review section (current list version, 异议处理结果, deadline, earlier
sealed versions, the objection form), objections from the page and by WeChat ("异议 <名次> <理由>"), and the
/me section with the citizen's objections and prize claims.

The use cases are `rewards.review.service.ReviewService` (container.review); this module only parses, rate limits,
checks the form token and says the outcome in Chinese. Objections are rate limited per citizen and per IP
(`rewards.http.ratelimit`, bucket "objection").
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError

from rewards.bootstrap import Container
from rewards.clock import IsoWeek
from rewards.deps import PUBLIC, Services
from rewards.errors import DomainError, Forbidden, Invalid, TooManyRequests, Unauthorized
from rewards.http.ratelimit import Limit, client_ip, limiter_of
from rewards.logs import get_logger
from rewards.review.schemas import ClaimOut, ListVersionOut, ObjectionOut, ReviewStatusOut
from rewards.web import messages
from rewards.web.templating import page

log = get_logger("web.review")
router = APIRouter(include_in_schema=False, dependencies=PUBLIC)
OBJECTIONS_PER_WINDOW = 5  # objections one citizen may file per rate-limit window (REWARDS_RATE_LIMIT_WINDOW_SECONDS)
OBJECTION_WORD = "异议"
WECHAT_OBJECTION = re.compile(r"^异议[\s:：]*(\S+)\s*(.*)$", re.S)
RANK_MAX = 10_000  # a rank past this is refused before any lookup
CHANGE_LABELS = {"removed": "撤出", "moved": "名次递进", "entered": "递补进入"}
ACTION_LABELS = {"void_case": "作废所涉上报", "disqualify": "取消本周评奖资格"}
# Chinese reasons of the review use cases' error codes (the service's own messages are "中文 / English")
REASONS: dict[str, str] = {
    "reason_required": "请填写异议理由。",
    "reason_too_long": "异议理由太长，请精简后再提交。",
    "invalid_rank": "名次必须是正整数。",
    "no_list": "这一周还没有获奖名单。",
    "no_such_rank": "获奖名单中没有这个名次。",
    "not_published": "这一周的名单尚未公示，暂不接受异议。",
    "objections_closed": "公示期已结束，不再接受异议。",
    "already_objected": "您已对该条目提出过异议，请在“我的”查看处理进度。",
    "sign_in_required": "请先登录后再提出异议。",
    "bad_form_token": "表单已过期或不是本页发出的，请刷新页面后重试。",
    "rate_limited": "提交太频繁，请稍后再试。",
}


def reason_text(exc: DomainError) -> str:
    """The Chinese reason of a review error: ours, else the Chinese half of the service's message, else generic."""
    if exc.code in REASONS:
        return REASONS[exc.code]
    head, sep, _ = exc.message.partition("/ ")
    head = head.strip()
    if sep and any("\u4e00" <= ch <= "\u9fff" for ch in head):  # "中文 / English": the Chinese half
        return head if head.endswith(("。", "！", "）")) else head + "。"
    return messages.reason_of(exc)


def form_token(secret: str, openid: str) -> str:
    """The objection form's token, bound to the signed-in citizen (the form must echo it back)."""
    return hmac.new(secret.encode(), f"objection:{openid}".encode(), hashlib.sha256).hexdigest()


def limit_objections(request: Request, openid: str) -> None:
    """Count one objection attempt per citizen and per IP; 429 past the limit."""
    limiter = limiter_of(request)
    per_ip = limiter.settings.rate_limit_per_ip
    limiter.hit("objection", [Limit("citizen", openid, OBJECTIONS_PER_WINDOW), Limit("ip", client_ip(request), per_ip)])


def signed_in(request: Request) -> str | None:
    """The signed-in citizen's openid, if any."""
    openid = getattr(request.state, "citizen_openid", None)
    return openid if isinstance(openid, str) else None


# ------------------------------------------------------------------------------------------------ the week page


@dataclass(frozen=True)
class WeekReview:
    """What the week page shows of the week's review."""

    status: ReviewStatusOut
    current: ListVersionOut
    earlier: list[ListVersionOut]  # sealed versions before the current one, newest first
    changes: list[tuple[int, ListVersionOut]]  # (version number, version) with changes, newest first
    mine: list[ObjectionOut]  # the signed-in citizen's objections on this week
    signed_in: bool
    just_objected: bool  # back from a successful objection (?objected=1)
    csrf: str
    reason_max: int
    sign_in_url: str


def week_review(request: Request, c: Services, week: str) -> WeekReview | None:
    """The review section of a closed week's page (None for a week without a list, or a malformed week)."""
    try:
        label = str(IsoWeek.from_text(week))
        status = c.review.status(label)
        if status.phase == "no_list":
            return None
        versions = c.review.versions(label)
    except DomainError:
        return None  # the page itself says what is wrong with the week
    openid = signed_in(request)
    mine = [o for o in c.review.objections_of(openid) if o.week == label] if openid else []
    return WeekReview(
        status=status,
        current=versions[-1],
        earlier=list(reversed(versions[:-1])),
        changes=[(v.number, v) for v in reversed(versions) if v.changes],
        mine=mine,
        signed_in=openid is not None,
        just_objected=request.query_params.get("objected") == "1",
        csrf=form_token(c.http.codec.secret, openid) if openid else "",
        reason_max=c.settings.objection_reason_max,
        sign_in_url=f"/auth/wechat/login?next={quote(f'/weeks/{label}#review')}",
    )


ReviewSection = Annotated[WeekReview | None, Depends(week_review)]


@router.get("/weeks/{week}/versions/{number}", response_class=HTMLResponse)
def version_page(
    c: Services, week: Annotated[str, Path(max_length=16)], number: Annotated[int, Path(ge=1, le=100_000)]
) -> HTMLResponse:
    """One sealed version of a week's prize list, readable with its checksum (masked names)."""
    label = str(IsoWeek.from_text(week))
    version = c.review.version(label, number)
    return page("week_version.html", nav="weeks", week=label, version=version, change_labels=CHANGE_LABELS)


@router.post("/weeks/{week}/objections", response_model=None)
def object_from_page(
    request: Request,
    c: Services,
    week: Annotated[str, Path(max_length=16)],
    rank: Annotated[str, Form(max_length=64)] = "",
    reason: Annotated[str, Form(max_length=20_000)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """File an objection from the week page (a signed-in citizen, the page's form token); back to the page."""
    openid = signed_in(request)
    try:
        label = str(IsoWeek.from_text(week))
        if openid is None:
            raise Unauthorized("sign in to object", code="sign_in_required")
        if not hmac.compare_digest(form_token(c.http.codec.secret, openid), csrf):
            raise Forbidden("invalid form token; reload the page and try again", code="bad_form_token")
        limit_objections(request, openid)
        c.review.object(label, parse_rank(rank), openid, reason, channel="web")
    except DomainError as exc:
        return refusal(exc, f"/weeks/{quote(week)}#review")
    return RedirectResponse(f"/weeks/{label}?objected=1#review", status_code=303)


def parse_rank(text: str) -> int:
    """A 名次 as typed (digits, possibly full-width or with 第/名); Invalid(invalid_rank) otherwise."""
    cleaned = text.strip().removeprefix("第").removesuffix("名").strip()
    if not cleaned.isdecimal() or len(cleaned) > 6:
        raise Invalid("名次必须是正整数 / rank must be a positive integer", code="invalid_rank")
    value = int(cleaned)  # int() reads full-width digits too
    if not 1 <= value <= RANK_MAX:
        raise Invalid("名次必须是正整数 / rank must be a positive integer", code="invalid_rank")
    return value


def refusal(exc: DomainError, back_url: str) -> HTMLResponse:
    """The page of a refused objection: the status of the error and the reason in Chinese."""
    response = page(
        "error.html",
        status_code=exc.status,
        heading="异议未能提交",
        reason=reason_text(exc),
        fields=(),
        status=exc.status,
        back_url=back_url,
        back_label="返回获奖名单",
    )
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


# ------------------------------------------------------------------------------------------------ /me


@dataclass(frozen=True)
class MyReview:
    """The /me section: the citizen's objections (status, outcome) and prize claims (code, deadline)."""

    objections: list[ObjectionOut]
    claims: list[ClaimOut]


def my_review(request: Request, c: Services) -> MyReview | None:
    """The signed-in citizen's objections and claims (None when signed out or when the citizen has neither)."""
    openid = signed_in(request)
    if openid is None:
        return None
    found = MyReview(c.review.objections_of(openid), c.review.claims_of(openid))
    return found if found.objections or found.claims else None


MeReview = Annotated[MyReview | None, Depends(my_review)]


# ------------------------------------------------------------------------------------------------ WeChat


def is_objection_message(content: str) -> bool:
    """A text message that files an objection: "异议 <名次> <理由>"."""
    return content.strip().startswith(OBJECTION_WORD)


def objection_reply(c: Container, request: Request, content: str, openid: str, week: str | None = None) -> str:
    """File "异议 <名次> <理由>" for the latest week in 公示 and say the outcome (or the refusal) in Chinese."""
    most = c.settings.objection_reason_max
    usage = f"提出异议请回复：异议 名次 理由\n例如：异议 3 该市民的上报与他人重复\n理由最多 {most} 字。"
    found = WECHAT_OBJECTION.match(content.strip())
    if found is None or not found.group(2).strip():
        return usage
    label = week or open_week(c)
    if label is None:
        return "目前没有处于公示期的获奖名单，暂不接受异议。"
    try:
        limit_objections(request, openid)
        out = c.review.object(label, parse_rank(found.group(1)), openid, found.group(2), channel="wechat")
        status = c.review.status(label)
    except DomainError as exc:
        return f"异议未能提交：{reason_text(exc)}" + ("\n" + usage if exc.code == "invalid_rank" else "")
    except SQLAlchemyError as exc:  # answer within WeChat's 5 seconds rather than fail the message
        log.warning("objection unavailable for a WeChat reply: %s", type(exc).__name__)
        return "系统繁忙，请稍后再试。"
    deadline = status.deadline.astimezone(c.settings.tz).strftime("%m月%d日 %H:%M") if status.deadline else ""
    return (
        f"已收到您对{IsoWeek.parse(label).label()}获奖名单第 {out.rank} 名（{out.target_name}）的异议，"
        f"指挥中心将在公示期结束（{deadline}）后给出处理结果，可在“我的”页面查看进度。"
    )


def open_week(c: Container) -> str | None:
    """The most recent closed week whose 公示 accepts objections now (the WeChat command names no week)."""
    week = c.leaderboard.current_week()
    for _ in range(4):  # 公示 windows are days long: the last few weeks are enough
        week = week.previous()
        try:
            if c.review.status(str(week)).accepting_objections:
                return str(week)
        except DomainError:
            continue
    return None
