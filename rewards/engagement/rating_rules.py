"""Satisfaction ratings (pure): the levels, who may rate which case and until when, the WeChat command, the rate.

A reporter rates the handling of their own report once, after the case was resolved or closed, within
`rating_window_days` counted from the moment the case entered that status (`status_at`: a case sent back and
resolved again, or resolved and then closed, opens a new window). Every refusal is a DomainError with a code and
a reason, checked before anything is written.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from rewards.cases.lifecycle import CLOSED, RESOLVED
from rewards.errors import BadRequest, Conflict, Forbidden, Invalid

SATISFIED, BASIC, UNSATISFIED = "satisfied", "basic", "unsatisfied"
LEVELS = (SATISFIED, BASIC, UNSATISFIED)
LEVEL_LABELS = {SATISFIED: "满意", BASIC: "基本满意", UNSATISFIED: "不满意"}
CHANNEL_ME, CHANNEL_API, CHANNEL_WECHAT = "me", "api", "wechat"
CHANNELS = (CHANNEL_ME, CHANNEL_API, CHANNEL_WECHAT)
RATEABLE_STATES = frozenset({RESOLVED, CLOSED})
COMMENT_MAX = 200  # characters; Settings.rating_comment_max_chars may lower it
CASE_ID_MAX = 64  # cases.case_id is String(64)

WECHAT_WORD = "评价"
WECHAT_USAGE = (
    "评价格式：回复“评价 案件号 满意”（或 基本满意、不满意），可在后面附上意见，"
    "例如：评价 LZ2026001 不满意 垃圾仍未清走"
)
REFUSALS = {  # what a citizen reads (我的, WeChat) when a rating is refused, by error code
    "unknown_case": "没有找到这个案件号，请核对后重试。",
    "not_your_case": "只能评价您本人举报的案件。",
    "already_rated": "该案件您已评价过，每件只能评价一次。",
    "not_rateable_yet": "案件处置完成（已处置或已结案）后才能评价。",
    "rating_window_closed": "该案件的评价期限已过。",
    "invalid_rating": "评价只能是“满意”“基本满意”或“不满意”。",
    "comment_too_long": "意见太长了，请精简后重试。",
    "bad_comment": "意见中含有无法识别的字符。",
    "bad_rating_command": WECHAT_USAGE,
    "cross_site": "请求来自其他网站，已拒绝。",
}
_BY_LABEL = {label: level for level, label in LEVEL_LABELS.items()}
_SPACES = re.compile(r"\s+")


def refusal_text(code: str, max_chars: int = COMMENT_MAX) -> str:
    """The Chinese reason for a refused rating (a generic one for codes this module does not raise)."""
    if code == "comment_too_long":
        return f"意见最多 {max_chars} 个字，请精简后重试。"
    return REFUSALS.get(code, "暂时无法评价，请稍后再试。")


def parse_level(text: str) -> str:
    """Return the level code of a code or its Chinese label ("满意", "basic" …); 422 invalid_rating otherwise."""
    value = text.strip()
    if value in LEVELS:
        return value
    if value in _BY_LABEL:
        return _BY_LABEL[value]
    raise Invalid("rating must be 满意 / 基本满意 / 不满意 (satisfied / basic / unsatisfied)", code="invalid_rating")


def clean_comment(text: str | None, max_chars: int = COMMENT_MAX) -> str | None:
    """Return the comment trimmed (None when empty); 422 comment_too_long or bad_comment when it cannot be kept."""
    if text is None:
        return None
    value = text.strip()
    if not value:
        return None
    if len(value) > max_chars:
        raise Invalid(f"the comment is at most {max_chars} characters", code="comment_too_long")
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t" for ch in value):
        raise Invalid("the comment contains control characters", code="bad_comment")
    return value


def window_closes(since: datetime, window_days: int) -> datetime:
    """The moment the rating window of a case resolved or closed at `since` ends (exclusive)."""
    return since + timedelta(days=window_days)


def rateable_now(status: str, status_at: datetime, now: datetime, window_days: int) -> bool:
    """True while a case's reporter may still rate it (resolved or closed, inside the window)."""
    return status in RATEABLE_STATES and status_at <= now < window_closes(status_at, window_days)


def check_rateable(
    *, own: bool, already_rated: bool, status: str, status_at: datetime, now: datetime, window_days: int
) -> None:
    """Refuse a rating with the reason, in this order: not the reporter, already rated, not handled, too late."""
    if not own:
        raise Forbidden("only the citizen who reported this case may rate it", code="not_your_case")
    if already_rated:
        raise Conflict("this case has already been rated; a rating is given once", code="already_rated")
    if status not in RATEABLE_STATES:
        raise Conflict(f"a case can be rated once it is resolved or closed (it is {status})", code="not_rateable_yet")
    if now < status_at or now >= window_closes(status_at, window_days):
        raise Conflict(
            f"the rating window of {window_days} days after the case was resolved or closed has ended",
            code="rating_window_closed",
        )


def is_followup(level: str, comment: str | None) -> bool:
    """A 不满意 with a comment becomes a follow-up item for the department."""
    return level == UNSATISFIED and bool(comment)


def satisfaction_rate(satisfied: int, basic: int, unsatisfied: int) -> float | None:
    """The public satisfaction rate: (满意 + 基本满意) / all ratings; None when nobody rated."""
    total = satisfied + basic + unsatisfied
    return None if total == 0 else (satisfied + basic) / total


def thanks_text(case_id: str, level: str, followup: bool, points: int) -> str:
    """The WeChat reply to a recorded rating."""
    lines = [f"感谢您的评价！举报 {case_id}：{LEVEL_LABELS.get(level, level)}。"]
    if followup:
        lines.append("您的意见已转交责任部门跟进。")
    if points > 0:
        lines.append(f"评价奖励 {points} 积分已计入。")
    return "\n".join(lines)


@dataclass(frozen=True)
class RatingCommand:
    """A rating as a WeChat text message states it."""

    case_id: str
    level: str
    comment: str | None


def parse_wechat_rating(text: str, max_chars: int = COMMENT_MAX) -> RatingCommand | None:
    """Parse "评价 <案件号> <满意|基本满意|不满意> [意见]"; None when the text is not a rating command.

    Any whitespace (also the full-width space) separates the parts; 400 bad_rating_command with the usage when
    the text starts with 评价 but the rest does not fit.
    """
    value = text.strip()
    if not value.startswith(WECHAT_WORD):
        return None
    parts = _SPACES.split(value[len(WECHAT_WORD) :].strip(), maxsplit=2)
    if len(parts) < 2 or not parts[0]:
        raise BadRequest(WECHAT_USAGE, code="bad_rating_command")
    case_id, level_text = parts[0], parts[1]
    if len(case_id) > CASE_ID_MAX:
        raise BadRequest(WECHAT_USAGE, code="bad_rating_command")
    try:
        level = parse_level(level_text)
    except Invalid:
        raise BadRequest(WECHAT_USAGE, code="bad_rating_command") from None
    return RatingCommand(case_id, level, clean_comment(parts[2] if len(parts) > 2 else None, max_chars))
