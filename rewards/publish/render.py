"""The weekly announcement rendered with Jinja2 (autoescape, StrictUndefined), within WeChat's limits by construction.

WeChat's draft/add limits: title <= 32 characters, author <= 16, digest <= 128, content fewer than 20,000
characters (tags included) and under 1 MB, content_source_url under 1 KB. Every variable piece is clipped, the
table is capped, and the body drops table rows (pointing to "阅读原文") until it fits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from rewards.clock import IsoWeek
from rewards.config import Settings
from rewards.leaderboard.snapshot import Snapshot

TITLE_MAX = 32
AUTHOR_MAX = 16
DIGEST_MAX = 128
CONTENT_MAX = 20_000  # "必须少于2万字符": len(content) must stay below this
CONTENT_MAX_BYTES = 1_000_000
SOURCE_URL_MAX_BYTES = 1024
ARTICLE_MAX_ROWS = 100  # more winners than this (a custom tier table) are listed on the H5 page only
NAME_MAX = 12  # displayed masked-name length
TIER_MAX = 8  # displayed tier-name length
RULES_MAX = 400  # characters of the rules paragraph before escaping
TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class Article:
    """One WeChat news article as sent to draft/add (and written to the outbox)."""

    week: str
    title: str
    author: str
    digest: str
    content: str
    content_source_url: str


@dataclass(frozen=True)
class RowView:
    """A table row as displayed: clipped masked name and tier."""

    rank: int
    name: str
    points: int
    tier: str
    prize: int


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The template environment: autoescape everywhere, undefined names are errors."""
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def clip(text: str, limit: int) -> str:
    """Return text cut to at most `limit` characters, ending with … when it was cut."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)] + "…"


def week_label(week: str) -> str:
    """'2026-W48' -> '2026年第48周'."""
    w = IsoWeek.parse(week)
    return f"{w.year}年第{w.week}周"


def week_dates(week: str) -> str:
    """'2026-W48' -> '11月23日—11月29日'."""
    monday = IsoWeek.parse(week).monday()
    sunday = monday + timedelta(days=6)
    return f"{monday.month}月{monday.day}日—{sunday.month}月{sunday.day}日"


def leaderboard_url(settings: Settings, week: str) -> str:
    """The H5 leaderboard page of a week: the article's "阅读原文" link."""
    url = settings.public_base_url.rstrip("/") + settings.leaderboard_page_path.format(week=week)
    if len(url.encode("utf-8")) >= SOURCE_URL_MAX_BYTES:
        raise ValueError(f"the leaderboard URL is {len(url.encode())} bytes; WeChat accepts under 1 KB")
    return url


def article_title(week: str) -> str:
    """The fixed-format title, at most 20 characters (WeChat allows 32)."""
    return f"随手拍周榜｜{week_label(week)}获奖名单"


def article_digest(snapshot: Snapshot) -> str:
    """The digest shown in the feed, at most 128 characters."""
    label = week_label(snapshot.week)
    if not snapshot.rows:
        return clip(f"{label}随手拍周榜：本周暂无获奖市民，欢迎大家继续随手拍、共建美丽城市。", DIGEST_MAX)
    top = snapshot.rows[0]
    return clip(
        f"{label}随手拍周榜揭晓：共{len(snapshot.rows)}位市民获奖，第一名{short_name(top.display_name)}"
        f"获得{top.points}分。感谢每一位用随手拍守护城市的市民！",
        DIGEST_MAX,
    )


def rules_paragraph(settings: Settings) -> str:
    """The program's rules in one paragraph (plain text, clipped), built from Settings."""
    counts = Counter(c.points for c in settings.categories)
    usual = counts.most_common(1)[0][0]
    special = "、".join(f"{c.name}{c.points}分" for c in settings.categories if c.points != usual)
    parts = [
        f"市民通过“随手拍”上报城市管理问题，经指挥中心立案确认有效后获得积分，每件{usual}分"
        + (f"（{special}）" if special else "")
        + "，积分不设上限"
        + (f"，每人每天最多计{settings.daily_award_limit}件" if settings.daily_award_limit else "")
        + "。"
    ]
    if settings.first_reporter_only:
        parts.append("同一问题多人上报时，仅首位上报者得分。")
    parts.append("案件因造假等原因被撤销的，扣回相应积分；违规者取消评奖资格。")
    parts.append("匿名上报也计分，" if settings.anonymous_earns else "匿名上报不计分，")
    parts.append("获奖须完成实名认证。")
    zone = "北京时间" if settings.timezone == "Asia/Shanghai" else settings.timezone
    parts.append(f"积分计入立案当周（每周一0时起算，{zone}），积分高者排名靠前，同分时先达到该积分者在前。")
    tiers = "、".join(
        (f"第{t.first}名" if t.first == t.last else f"第{t.first}—{t.last}名") + f"{clip(t.name, TIER_MAX)}{t.value}元"
        for t in sorted(settings.prize_tiers, key=lambda t: t.first)
    )
    parts.append(f"每周按名次评奖：{tiers}。")
    return clip("".join(parts), RULES_MAX)


def short_name(display_name: str) -> str:
    """A masked name shortened for the table: first and last character kept, the stars between capped."""
    if len(display_name) <= NAME_MAX:
        return display_name
    return display_name[0] + "*" * (NAME_MAX - 2) + display_name[-1]


def row_views(snapshot: Snapshot) -> list[RowView]:
    """The winners as displayed in the article (at most ARTICLE_MAX_ROWS)."""
    return [
        RowView(r.rank, short_name(r.display_name), r.points, clip(r.tier, TIER_MAX), r.prize)
        for r in snapshot.rows[:ARTICLE_MAX_ROWS]
    ]


def render_content(snapshot: Snapshot, settings: Settings, image_url: str | None, limit: int = CONTENT_MAX) -> str:
    """The article body (HTML), with table rows dropped (pointing to "阅读原文") until it is under `limit`."""
    rows = row_views(snapshot)
    context: dict[str, Any] = {
        "image_url": image_url,
        "week_label": week_label(snapshot.week),
        "week_dates": week_dates(snapshot.week),
        "participants": snapshot.participants,
        "winners": len(snapshot.rows),
        "rules": rules_paragraph(settings),
        "leaderboard_url": leaderboard_url(settings, snapshot.week),
    }
    template = environment().get_template("article.html")
    shown = len(rows)
    while True:
        content = template.render(rows=rows[:shown], hidden=len(snapshot.rows) - shown, **context)
        if fits(content, limit):
            return content
        if shown == 0:
            raise ValueError("the article cannot fit WeChat's content limit even without the winners table")
        shown = max(0, shown - max(1, (len(content) - limit) // 60 + 1))


def fits(content: str, limit: int = CONTENT_MAX) -> bool:
    """True when WeChat accepts a body of this size (fewer than 20,000 characters, under 1 MB)."""
    return len(content) < limit and len(content.encode("utf-8")) < CONTENT_MAX_BYTES


def render_article(snapshot: Snapshot, settings: Settings, image_url: str | None) -> Article:
    """Render the week's article; image_url is the body image as WeChat's media/uploadimg returned it."""
    return Article(
        week=snapshot.week,
        title=article_title(snapshot.week),
        author=clip(settings.wechat_article_author, AUTHOR_MAX),
        digest=article_digest(snapshot),
        content=render_content(snapshot, settings, image_url),
        content_source_url=leaderboard_url(settings, snapshot.week),
    )


def render_page(article: Article, status: str | None = None, published_url: str | None = None) -> str:
    """A standalone HTML page showing an article (the service's preview page and the outbox file)."""
    return (
        environment()
        .get_template("page.html")
        .render(article=article, body=Markup(article.content), status=status, published_url=published_url)
    )


def render_missing(week: str, message: str) -> str:
    """The page shown for a week that has no snapshot yet."""
    return environment().get_template("missing.html").render(week=week, week_label=week_label(week), message=message)
