"""What the pages and the console say, in Chinese: reasons for errors (by code, else by status), role and audit
labels, publication failures. The API keeps its English `{error, detail}`; people read these."""

from __future__ import annotations

from datetime import timedelta

from rewards.errors import DomainError

REASONS: dict[str, str] = {
    # addresses and parameters
    "invalid_week": "周次格式不正确，应为“2026-W48”这样的格式（年份-W周数，周数 01–53）。",
    "invalid_district": "请选择一个区县。",
    "invalid_offset": "页码不正确。",
    "invalid_limit": "每页条数不正确。",
    "invalid_value": "请求中有无法识别的字符或超出范围的数值。",
    "invalid_request": "请求参数不正确。",
    "not_found": "没有找到这个页面。",
    "week_not_found": "没有这一周的结算记录。",
    "week_in_future": "这一周还没有到来。",
    # cases and verdicts
    "unknown_case": "没有找到这个案件号。",
    "unknown_citizen": "没有找到这位市民。",
    "unknown_verdict": "审核结论只能是“有效”“无效”或“重复”。",
    "unknown_category": "没有这个问题类别。",
    "verdict_already_given": "该案件已有审核结论，不能改判；如属虚假举报，请在案件页作废。",
    "duplicate_of_later_report": "所填首报案件的上报时间晚于本案：只有最早的举报得分，请把较晚的那件标为重复。",
    "self_duplicate": "案件不能重复于它自己，请填写更早上报的案件号。",
    "duplicate_needs_original": "选择“重复”时，请填写首报案件号（或点选疑似重复中的一件）。",
    "unexpected_duplicate_of": "只有“重复”结论才需要填写首报案件号。",
    "reason_required": "请填写理由。",
    "illegal_transition": "案件当前状态不允许这一操作（可能已被他人处理），请刷新后查看。",
    "status_needs_flow": "这一状态只能通过审核、作废或上报产生。",
    "concurrent_write": "该案件正被他人同时处理，请刷新后重试。",
    # publications
    "not_failed": "只有发布失败的周才能重试。",
    "publish_in_progress": "该周正在发布中，请稍后查看进度。",
    "publish_raced": "该周的发布状态刚被其他进程更新，请刷新后查看。",
    "week_not_closed": "该周尚未结算，结算后才能发布。",
    "week_not_ended": "该周尚未结束，不能结算。",
    # sign-in
    "oauth_unconfigured": "本服务尚未接入微信公众号，暂时无法微信授权登录。",
    "wechat_unconfigured": "本服务尚未接入微信公众号。",
    "wechat_unavailable": "微信暂时没有响应，请稍后再试。",
    "bad_code": "微信登录凭证无效或已使用，请重新登录。",
    "bad_state": "登录已过期或来源不一致，请重新登录。",
    "bad_redirect": "登录后的跳转地址不正确。",
    "bad_openid": "用户标识格式不正确。",
    "bad_body": "提交的内容格式不正确。",
    "cross_site": "请求来自其他网站，已拒绝。",
    "bad_form_token": "表单已过期或不是本页发出的，请刷新页面后重试。",
    "rate_limited": "操作过于频繁，请稍后再试。",
    "unavailable": "服务暂时不可用，请稍后再试。",
}
STATUS_REASONS: dict[int, str] = {
    400: "请求不正确。",
    401: "请先登录。",
    403: "没有权限进行这一操作。",
    404: "没有找到这个页面。",
    405: "不支持这种访问方式。",
    409: "当前状态不允许这一操作，请刷新后查看。",
    413: "提交的内容过大。",
    415: "提交的内容格式不受支持。",
    422: "请求参数不正确。",
    429: "操作过于频繁，请稍后再试。",
    500: "服务出现错误，请稍后再试。",
    503: "服务暂时不可用，请稍后再试。",
}
STATUS_TITLES: dict[int, str] = {
    400: "请求有误",
    401: "需要登录",
    403: "无权访问",
    404: "页面不存在",
    405: "访问方式不支持",
    409: "操作冲突",
    413: "内容过大",
    422: "参数有误",
    429: "访问过于频繁",
    503: "服务暂不可用",
}
ROLE_LABELS = {"admin": "管理员", "validator": "审核员", "publisher": "发布员", "intake": "对接系统"}
AUDIT_LABELS = {
    "verdict:valid": "审核：有效，立案",
    "verdict:invalid": "审核：无效",
    "verdict:duplicate": "审核：重复举报",
    "void": "作废案件",
    "ban": "取消评奖资格",
    "unban": "恢复评奖资格",
    "console_sign_in": "登录审核台",
    "publish:retry-requested": "申请重新发布",
    "rating:followup-handled": "不满意评价已跟进处理",
}
WECHAT_ERRORS = {  # the WeChat errcodes a publication most often fails with
    -1: "微信系统繁忙",
    40001: "公众号凭证（AppSecret）无效或已过期",
    40007: "图片素材无效",
    40164: "服务器 IP 不在公众号的 IP 白名单中",
    41001: "缺少访问凭证",
    42001: "访问凭证已过期",
    45009: "接口调用次数已达今日上限",
    48001: "公众号没有发布接口的权限（需认证）",
    53503: "草稿未通过发布检查",
    53504: "文章需要人工审核",
    53505: "文章在发布前被修改，需重新提交",
}


def reason(code: str, status: int) -> str:
    """The Chinese reason for an error code, else for its HTTP status."""
    return REASONS.get(code) or STATUS_REASONS.get(status) or f"请求未能完成（{status}）。"


def reason_of(exc: DomainError) -> str:
    """The Chinese reason for a domain error."""
    return reason(exc.code, exc.status)


def title(status: int) -> str:
    """A short Chinese heading for an HTTP error status."""
    return STATUS_TITLES.get(status, "出错了")


def wait_text(waited: timedelta) -> str:
    """How long something has waited, in Chinese words (2 天 3 小时, 3 小时 5 分钟, 12 分钟)."""
    minutes = max(int(waited.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} 天 {hours} 小时"
    if hours:
        return f"{hours} 小时 {minutes} 分钟"
    return f"{minutes} 分钟" if minutes else "不到 1 分钟"


def publication_problem(error_code: int | None, error_message: str | None) -> str | None:
    """A failed publication explained to staff in Chinese, without the server's internals (paths, raw answers)."""
    if error_code is not None:
        known = WECHAT_ERRORS.get(error_code)
        return f"微信错误码 {error_code}" + (f"：{known}" if known else "")
    if error_message:
        return "发布渠道出错（详细信息见服务日志）"
    return None
