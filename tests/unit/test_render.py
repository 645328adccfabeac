"""The WeChat article stays within WeChat's limits for every snapshot, escapes names and shows the winners."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import UndefinedError

from rewards.config import Settings, load_settings
from rewards.errors import ConfigError
from rewards.leaderboard.snapshot import Snapshot, SnapshotRow
from rewards.masking import mask_name
from rewards.prizes import PrizeTier
from rewards.program import Program
from rewards.publish.outbox import data_uri
from rewards.publish.render import (
    ARTICLE_MAX_ROWS,
    AUTHOR_MAX,
    CONTENT_MAX,
    DIGEST_MAX,
    SOURCE_URL_MAX_BYTES,
    TEMPLATES,
    TITLE_MAX,
    environment,
    render_article,
    render_content,
    render_page,
)
from rewards.scoring.service import rule_settings

T0 = datetime(2026, 11, 23, 1, 2, 3, tzinfo=UTC)
DEFAULT = load_settings()
TIERS = DEFAULT.prize_table.tiers
NASTY = "<>&\"'张王李赵ABCxyz　 \t"
WECHAT_URL = "http://mmbiz.qpic.cn/mmbiz_png/" + "x" * 120 + "/0"
BANNER = data_uri((TEMPLATES.parent / "static" / "banner.png").read_bytes())


def program_of(settings: Settings) -> Program:
    """The program whose rules the article states."""
    return Program(rule_settings(settings), settings.prize_table, settings.timezone)


PROGRAM = program_of(DEFAULT)


def snapshot_of(names: list[str | None], tiers: tuple[PrizeTier, ...] = TIERS, points: int = 7) -> Snapshot:
    """A snapshot whose winners carry these (unmasked) names."""
    rows = []
    for rank, name in enumerate(names, start=1):
        tier = next(t for t in tiers if t.first <= rank <= t.last)
        rows.append(SnapshotRow(rank, rank, mask_name(name), points + len(names) - rank, T0, tier.name, tier.value))
    return Snapshot("2026-W48", tiers, len(rows) + 3, tuple(rows))


def check_limits(article) -> None:  # type: ignore[no-untyped-def]
    assert 0 < len(article.title) <= TITLE_MAX
    assert len(article.author) <= AUTHOR_MAX
    assert 0 < len(article.digest) <= DIGEST_MAX
    assert len(article.content) < CONTENT_MAX
    assert len(article.content.encode("utf-8")) < 1_000_000
    assert len(article.content_source_url.encode("utf-8")) < SOURCE_URL_MAX_BYTES


@st.composite
def custom_tiers(draw: st.DrawFn) -> tuple[PrizeTier, ...]:
    """Operator-configured tiers: long names with markup characters, up to 120 places."""
    widths = draw(st.lists(st.integers(1, 40), min_size=1, max_size=6))
    tiers, first = [], 1
    for i, width in enumerate(widths):
        name = draw(st.text(alphabet=NASTY, min_size=1, max_size=80))
        tiers.append(PrizeTier(first, first + width - 1, name, 10**9 // (i + 1)))
        first += width
    return tuple(tiers)


@settings(max_examples=150, deadline=None)
@given(
    names=st.lists(st.one_of(st.none(), st.text(alphabet=NASTY, min_size=1, max_size=64)), max_size=120),
    tiers=st.one_of(st.just(TIERS), custom_tiers()),
    points=st.integers(1, 2**53 - 200),
    image=st.sampled_from([None, WECHAT_URL, BANNER]),
)
def test_article_is_within_wechat_limits_for_every_snapshot(names, tiers, points, image) -> None:  # type: ignore[no-untyped-def]
    places = max(t.last for t in tiers)
    snap = snapshot_of(names[:places], tiers, points)
    article = render_article(snap, DEFAULT, PROGRAM, image)
    check_limits(article)
    shown = article.content.count("<tr>") - 1 if snap.rows else 0
    assert shown <= min(len(snap.rows), ARTICLE_MAX_ROWS)
    if shown < len(snap.rows):
        assert f"另有{len(snap.rows) - shown}位获奖市民" in article.content
    assert "<script" not in article.content.replace("&lt;script", "")


def test_eighty_long_names_all_fit_with_the_default_tiers() -> None:
    names = ["欧阳" + "很长的名字" * 12 + "&<>'\"" for _ in range(80)]  # 64+ characters, all escaped characters
    article = render_article(snapshot_of(names), DEFAULT, PROGRAM, WECHAT_URL)
    check_limits(article)
    assert article.content.count("<tr><td>") == 80  # every winner is listed
    assert "<td>80</td>" in article.content
    assert "欧**********&#34;</td>" in article.content  # masked, shortened, escaped


def test_the_article_lists_ranks_masked_names_points_tiers_prizes_rules_and_the_link() -> None:
    article = render_article(snapshot_of(["张三明", "李四", "王"]), DEFAULT, PROGRAM, WECHAT_URL)
    assert article.title == "随手拍周榜｜2026年第48周获奖名单"
    assert article.content_source_url == "http://127.0.0.1:8000/leaderboard?week=2026-W48"
    body = article.content
    assert "<tr><td>1</td><td>张*明</td><td>9</td><td>一等奖</td><td>500元</td></tr>" in body
    assert "<td>李*</td>" in body and "<td>*</td>" in body
    assert "张三明" not in body and "张*明" in article.digest
    assert "11月23日—11月29日" in body
    assert f'<img src="{WECHAT_URL}"' in body
    assert "活动规则" in body and "首位上报者" in body and "第 2–5 名 二等奖 每人 200 元" in body
    assert 'href="http://127.0.0.1:8000/leaderboard?week=2026-W48"' in body
    assert len(re.findall(r"<p>", body)) >= 3


def test_rules_follow_settings() -> None:
    custom = load_settings(daily_award_limit=3)
    body = render_article(snapshot_of([]), custom, program_of(custom), None).content
    assert "首位上报者" in body and "匿名上报不计分" in body and "每位市民每天最多 3 件有效举报计分" in body
    assert "每天最多" not in render_article(snapshot_of([]), DEFAULT, PROGRAM, None).content
    assert "本周暂无获奖市民" in render_article(snapshot_of([]), DEFAULT, PROGRAM, None).digest
    assert "<img" not in body


@pytest.mark.parametrize("removed", ["first_reporter_only", "anonymous_earns"])
def test_rules_no_engine_enforces_cannot_be_configured(removed: str) -> None:
    # the first reporter alone earns and anonymous reports never earn, always: the article says so (above)
    with pytest.raises(ConfigError, match=f"REWARDS_{removed.upper()} no longer exists"):
        load_settings(**{removed: removed == "anonymous_earns"})


def test_names_are_escaped_not_interpreted() -> None:
    article = render_article(snapshot_of(["<script>alert(1)</script>"]), DEFAULT, PROGRAM, None)
    assert "<script>" not in article.content
    assert "&lt;*****" in article.content


def test_templates_refuse_undefined_variables() -> None:
    with pytest.raises(UndefinedError):
        environment().get_template("article.html").render(rows=[])


def test_the_page_wraps_the_same_article() -> None:
    article = render_article(snapshot_of(["张三明"]), DEFAULT, PROGRAM, BANNER)
    page = render_page(article, status="预览")
    assert page.startswith("<!doctype html>") and 'lang="zh-CN"' in page
    assert article.content in page  # the body is included verbatim, not escaped twice
    assert "<title>随手拍周榜｜2026年第48周获奖名单</title>" in page


def test_rows_are_dropped_until_the_body_fits() -> None:
    snap = snapshot_of([f"市民{i}号" for i in range(80)])
    full = render_content(snap, DEFAULT, PROGRAM, None)
    limit = len(full) - 1000
    short = render_content(snap, DEFAULT, PROGRAM, None, limit=limit)
    assert len(short) < limit
    shown = short.count("<tr><td>")
    assert 0 < shown < 80
    assert f"另有{80 - shown}位获奖市民" in short
    with pytest.raises(ValueError, match="cannot fit"):
        render_content(snap, DEFAULT, PROGRAM, None, limit=100)
