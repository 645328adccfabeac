"""The articles of a reviewed week: the notice names the objection window (from the setting), the 定榜 says it is
final; both stay within WeChat's limits for any list, and the final notice carries the claim remark."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from rewards.config import load_settings
from rewards.leaderboard.snapshot import Snapshot, SnapshotRow
from rewards.publish.notify import client_msg_id, final_notice_data
from rewards.publish.port import FINAL, NOTICE
from rewards.publish.render import DIGEST_MAX, TITLE_MAX, fits, render_article
from tests.unit.test_render import PROGRAM, T0, program_of, snapshot_of


def test_the_notice_names_the_window_and_zero_days_names_none() -> None:
    snap = snapshot_of(["张三明", "李四"])
    three = render_article(snap, load_settings(), PROGRAM, None)
    assert "公示期为本文发布后3天" in three.content and "异议 名次 理由" in three.content and three.kind == NOTICE
    five = load_settings(objection_window_days=5)
    assert "公示期为本文发布后5天" in render_article(snap, five, program_of(five), None).content
    off = load_settings(objection_window_days=0)
    assert "公示" not in render_article(snap, off, program_of(off), None).content


def test_the_final_article_says_it_is_final_and_differs_from_the_notice() -> None:
    snap = snapshot_of(["张三明", "李四"])
    notice = render_article(snap, load_settings(), PROGRAM, None)
    final = render_article(snap, load_settings(), PROGRAM, None, FINAL)
    assert (
        final.kind == FINAL and "定榜" in final.title and "定榜" in final.digest and "本周获奖名单定榜" in final.content
    )
    assert final.title != notice.title and "公示期为本文发布后" not in final.content
    assert final.content_source_url == notice.content_source_url


@settings(max_examples=60)
@given(n=st.integers(0, 120), kind=st.sampled_from([NOTICE, FINAL]), week=st.integers(1, 52))
def test_both_kinds_fit_wechat(n: int, kind: str, week: int) -> None:
    base = snapshot_of([f"市民{i}" for i in range(min(n, 80))])
    snap = Snapshot(f"2026-W{week:02d}", base.tiers, base.participants, base.rows)
    a = render_article(snap, load_settings(), PROGRAM, None, kind)
    assert len(a.title) <= TITLE_MAX and len(a.digest) <= DIGEST_MAX and fits(a.content)


def test_the_final_notice_carries_the_remark_and_its_own_key() -> None:
    row = SnapshotRow(2, 7, "张*明", 30, T0, "二等奖", 100)
    data = final_notice_data(row, "2026-W47", "领奖码：ABCD-EFGH-JKMN，请于2026年12月31日前凭码领取奖励。")
    assert "定榜" in data["first"]["value"] and "ABCD-EFGH-JKMN" in data["remark"]["value"]
    assert client_msg_id("2026-W47", 7, FINAL) != client_msg_id("2026-W47", 7)
    assert client_msg_id("2026-W47", 7) == client_msg_id("2026-W47", 7, NOTICE)  # the notice key is unchanged
