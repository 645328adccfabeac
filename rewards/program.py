"""The program's rules as citizens read them, generated from Settings so published rules never disagree with code."""

from __future__ import annotations

from dataclasses import dataclass

from rewards.config import Settings


@dataclass(frozen=True)
class RuleLine:
    """One rule, in Simplified Chinese."""

    title: str
    text: str


def rule_lines(settings: Settings) -> list[RuleLine]:
    """Return the program's rules, each derived from the setting that enforces it."""
    places = max(t.last for t in settings.prize_tiers)
    lines = [
        RuleLine("有效才计分", "举报经数字城管指挥中心审核立案（有效）后计分；不予立案、无效或重复的举报不计分。"),
        RuleLine(
            "首报有效",
            "同一问题由多位市民举报时，只有最先举报的市民计分；同一市民重复举报同一问题只计一次。",
        ),
        RuleLine("上不封顶", "每件有效举报按问题类别计分，累计积分上不封顶。"),
        RuleLine("实名领奖", "匿名举报可受理但不计分；获奖需完成实名认证，被取消资格的用户不参与排名领奖。"),
        RuleLine("虚假举报", "经核查为摆拍、翻拍、伪造等虚假举报的，已得积分予以扣回，情节严重的取消参与资格。"),
        RuleLine(
            "周榜周期",
            f"积分计入发放当周（按{settings.timezone.replace('Asia/Shanghai', '北京时间')}每周一 0:00 起算）；"
            "每周一结算上周榜单，结算后不再变动，之后到达的变更计入当周。",
        ),
        RuleLine(
            "排名规则",
            "积分高者排名在前；积分相同时，先达到该积分者在前；仍相同时按注册先后排序。",
        ),
        RuleLine(
            "周榜奖励",
            f"每周前 {places} 名获奖："
            + "；".join(
                f"第 {t.first} 名 {t.name} {t.value} 元"
                if t.first == t.last
                else f"第 {t.first}–{t.last} 名 {t.name} 每人 {t.value} 元"
                for t in sorted(settings.prize_tiers, key=lambda t: t.first)
            )
            + "。",
        ),
    ]
    if settings.daily_award_limit is not None:
        lines.append(RuleLine("每日上限", f"每位市民每天最多 {settings.daily_award_limit} 件有效举报计分。"))
    return lines


def category_points(settings: Settings) -> list[tuple[str, str, int]]:
    """Return (group, category name, points) for the rules page, grouped."""
    return sorted(((c.group, c.name, c.points) for c in settings.categories), key=lambda x: (x[0], x[1]))


def rules_paragraph(settings: Settings) -> str:
    """Return all rules as one paragraph (for the weekly announcement)."""
    return "".join(f"{line.title}：{line.text}" for line in rule_lines(settings))
