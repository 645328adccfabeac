"""The weekly announcement rendered with Jinja2 (autoescape, StrictUndefined), within WeChat's limits by construction.

WeChat's draft/add limits: title <= 32 characters, author <= 16, digest <= 128, content fewer than 20,000
characters (tags included) and under 1 MB, content_source_url under 1 KB. Every variable piece is clipped, the
table is capped, and the body drops table rows (pointing to "阅读原文") until it fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from rewards.clock import IsoWeek
from rewards.config import Settings
from rewards.leaderboard.snapshot import Snapshot
from rewards.program import Program
from rewards.publish.port import FINAL, NOTICE, Article

TITLE_MAX = 32
AUTHOR_MAX = 16
DIGEST_MAX = 128
CONTENT_MAX = 20_000  # "必须少于2万字符": len(content) must stay below this
CONTENT_MAX_BYTES = 1_000_000
SOURCE_URL_MAX_BYTES = 1024
ARTICLE_MAX_ROWS = 100  # more winners than this (a custom tier table) are listed on the H5 page only
NAME_MAX = 12  # displayed masked-name length
TIER_MAX = 8  # displayed tier-name length
RULES_MAX = 600  # characters of the rules paragraph before escaping
TEMPLATES = Path(__file__).resolve().parent / "templates"


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


def leaderboard_url(settings: Settings, week: str) -> str:
    """The H5 leaderboard page of a week: the article's "阅读原文" link."""
    url = settings.public_base_url.rstrip("/") + settings.leaderboard_page_path.format(week=week)
    if len(url.encode("utf-8")) >= SOURCE_URL_MAX_BYTES:
        raise ValueError(f"the leaderboard URL is {len(url.encode())} bytes; WeChat accepts under 1 KB")
    return url


def article_title(week: str, kind: str = NOTICE) -> str:
    """The fixed-format title, at most 22 characters (WeChat allows 32); the final list's says 定榜."""
    label = IsoWeek.parse(week).label()
    return f"随手拍周榜｜{label}定榜名单" if kind == FINAL else f"随手拍周榜｜{label}获奖名单"


def article_digest(snapshot: Snapshot, kind: str = NOTICE) -> str:
    """The digest shown in the feed, at most 128 characters."""
    label = IsoWeek.parse(snapshot.week).label()
    if not snapshot.rows:
        return clip(f"{label}随手拍周榜：本周暂无获奖市民，欢迎大家继续随手拍、共建美丽城市。", DIGEST_MAX)
    top = snapshot.rows[0]
    if kind == FINAL:
        return clip(
            f"{label}随手拍周榜获奖名单定榜：公示期已满，共{len(snapshot.rows)}位市民获奖，"
            f"获奖市民请凭领奖码领取奖励。感谢每一位用随手拍守护城市的市民！",
            DIGEST_MAX,
        )
    return clip(
        f"{label}随手拍周榜揭晓：共{len(snapshot.rows)}位市民获奖，第一名{short_name(top.display_name)}"
        f"获得{top.points}分。感谢每一位用随手拍守护城市的市民！",
        DIGEST_MAX,
    )


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


def render_content(
    snapshot: Snapshot,
    settings: Settings,
    program: Program,
    image_url: str | None,
    limit: int = CONTENT_MAX,
    kind: str = NOTICE,
) -> str:
    """The article body (HTML), with table rows dropped (pointing to "阅读原文") until it is under `limit`.

    A notice (kind `notice`) with an objection window names the window (the deadline counts from the moment the
    article is published, so the article states the length and the week page the exact deadline); the final list
    (kind `final`) says it is final."""
    rows = row_views(snapshot)
    context: dict[str, Any] = {
        "final": kind == FINAL,
        "objection_days": settings.objection_window_days if kind == NOTICE else 0,
        "image_url": image_url,
        "week_label": IsoWeek.parse(snapshot.week).label(),
        "week_dates": IsoWeek.parse(snapshot.week).dates(),
        "participants": snapshot.participants,
        "winners": len(snapshot.rows),
        "rules": clip(program.summary(), RULES_MAX),
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


def render_article(
    snapshot: Snapshot, settings: Settings, program: Program, image_url: str | None, kind: str = NOTICE
) -> Article:
    """Render the week's article (kind notice, or final: the 定榜 list as rewards.review passes it in the snapshot's
    shape); image_url is the body image as WeChat's media/uploadimg returned it."""
    return Article(
        week=snapshot.week,
        title=article_title(snapshot.week, kind),
        author=clip(settings.wechat_article_author, AUTHOR_MAX),
        digest=article_digest(snapshot, kind),
        content=render_content(snapshot, settings, program, image_url, kind=kind),
        content_source_url=leaderboard_url(settings, snapshot.week),
        kind=kind,
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
    return (
        environment()
        .get_template("missing.html")
        .render(week=week, week_label=IsoWeek.parse(week).label(), message=message)
    )
