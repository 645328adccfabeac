"""The program's rules as citizens read them (pure), generated from the objects that enforce them.

`Program` holds the scoring rule settings (rewards.scoring.model.RuleSettings: the category table and the daily
limit), the prize table (rewards.prizes.PrizeTable) and the program's time zone, which decides where a week
begins. The /rules page, the weekly article and the WeChat replies are all written from it, so a rule setting
changes what the engine does and what citizens are told together; a setting that no rule enforces does not exist.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rewards.prizes import PrizeTable
from rewards.scoring.model import RuleSettings

# Every Settings field that is a program rule (tests/unit/test_rules_text.py walks each of them)
RULE_SETTINGS = (
    "categories",
    "daily_award_limit",
    "prize_tiers",
    "timezone",
    "rating_award_points",
    "rating_award_daily_cap",
)


RATING_FREE = "举报处置完成后可对处置结果进行满意度评价（满意、基本满意、不满意），评价不影响积分和排名。"


@dataclass(frozen=True)
class RuleLine:
    """One rule, in Simplified Chinese."""

    title: str
    text: str


def zone_name(timezone: str) -> str:
    """The time zone as citizens read it."""
    return "北京时间" if timezone == "Asia/Shanghai" else timezone


@dataclass(frozen=True)
class Program:
    """The enforced rules of the program, and their text."""

    rules: RuleSettings
    prizes: PrizeTable
    timezone: str

    def prize_text(self) -> str:
        """The prize bands: 第 1 名 一等奖 500 元；第 2–5 名 二等奖 每人 200 元 …"""
        return "；".join(
            f"{t.band()} {t.name} {t.value} 元" if t.first == t.last else f"{t.band()} {t.name} 每人 {t.value} 元"
            for t in self.prizes.tiers
        )

    def points_text(self) -> str:
        """Points per valid case: the usual value and the categories that differ (每件 1 分（井盖缺失 2 分）)."""
        counts = Counter(c.points for c in self.rules.categories)
        usual = counts.most_common(1)[0][0]
        special = "、".join(f"{c.name} {c.points} 分" for c in self.rules.categories if c.points != usual)
        return f"每件 {usual} 分" + (f"（{special}）" if special else "")

    def limit_text(self) -> str | None:
        """The daily limit, when one is set."""
        limit = self.rules.daily_award_limit
        return None if limit is None else f"每位市民每天最多 {limit} 件有效举报计分"

    def rating_text(self) -> str | None:
        """The optional award for rating a handled report, when an operator turned it on."""
        points = self.rules.rating_award_points
        if points <= 0:
            return None
        return (
            f"举报处置完成后对处置结果进行满意度评价，每件可得 {points} 分（每件仅一次），"
            f"每位市民每天最多 {self.rules.rating_award_daily_cap} 次评价奖励"
        )

    def lines(self) -> list[RuleLine]:
        """Every rule, for the /rules page."""
        lines = [
            RuleLine("有效才计分", "举报经数字城管指挥中心审核立案（有效）后计分；不予立案、无效或重复的举报不计分。"),
            RuleLine(
                "首报有效",
                "同一问题由多位市民举报时，只有最先举报的市民计分；同一市民重复举报同一问题只计一次。",
            ),
            RuleLine("上不封顶", f"有效举报按问题类别计分，{self.points_text()}，累计积分上不封顶。"),
            RuleLine("实名领奖", "匿名举报可受理但不计分；获奖需完成实名认证，被取消资格的用户不参与排名领奖。"),
            RuleLine("虚假举报", "经核查为摆拍、翻拍、伪造等虚假举报的，已得积分予以扣回，情节严重的取消参与资格。"),
            RuleLine(
                "周榜周期",
                f"积分计入发放当周（按{zone_name(self.timezone)}每周一 0:00 起算）；"
                "每周一结算上周榜单，结算后不再变动，之后到达的变更计入当周。",
            ),
            RuleLine("排名规则", "积分高者排名在前；积分相同时，先达到该积分者在前；仍相同时按注册先后排序。"),
            RuleLine("周榜奖励", f"每周前 {self.prizes.places} 名获奖：{self.prize_text()}。"),
        ]
        limit = self.limit_text()
        if limit is not None:
            lines.append(RuleLine("每日上限", f"{limit}。"))
        rating = self.rating_text()
        lines.append(RuleLine("评价奖励", f"{rating}。") if rating else RuleLine("满意度评价", RATING_FREE))
        return lines

    def summary(self) -> str:
        """All rules in one short paragraph (the weekly article)."""
        limit, rating = self.limit_text(), self.rating_text()
        return (
            f"市民通过“随手拍”上报城市管理问题，经指挥中心立案确认有效后获得积分，{self.points_text()}，积分不设上限"
            + (f"，{limit}" if limit else "")
            + "。同一问题多人上报时，仅首位上报者得分；匿名上报不计分。"
            "案件因造假等原因被撤销的，扣回相应积分；违规者取消评奖资格。获奖须完成实名认证。"
            f"积分计入立案当周（每周一0时起算，{zone_name(self.timezone)}），积分高者排名靠前，同分时先达到该积分者在前。"
            f"每周前 {self.prizes.places} 名获奖：{self.prize_text()}。" + (f"{rating}。" if rating else "")
        )

    def category_points(self) -> list[tuple[str, str, int]]:
        """(group, category name, points) for the rules page, grouped."""
        return sorted(((c.group, c.name, c.points) for c in self.rules.categories), key=lambda x: (x[0], x[1]))
