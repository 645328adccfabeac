"""The identity rules: safe redirects, OAuth state, session cookies, rate-limit windows, reply texts."""

from __future__ import annotations

import logging
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rewards.config import load_settings
from rewards.errors import BadRequest, ConfigError
from rewards.http.ratelimit import counter_key, window_at
from rewards.http.session import CitizenSession, SessionCodec, token_fingerprint
from rewards.leaderboard.ledger_standing import points_needed
from rewards.leaderboard.schemas import ScopeStandingOut, StandingOut
from rewards.logs import RedactSecrets
from rewards.prizes import PrizeTier
from rewards.web.oauth import make_state, safe_next, state_matches
from rewards.web.wechat import help_text, rank_text, welcome_text
from tests.conftest import ADMIN_TOKEN, INTAKE_TOKEN, VALIDATOR_TOKEN, test_settings

TRICKY = [
    "/",
    "//",
    "/\\",
    "\\",
    "\t",
    "\n",
    "\r",
    " ",
    ":",
    "@",
    "?",
    "#",
    "%2f",
    "%5c",
    "http:",
    "https:",
    "javascript:",
    "evil.example",
    "me",
    ".",
    "..",
    "\x00",
    "\x7f",
    "\u3000",
    "。",
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TRICKY) | st.text(max_size=3), max_size=8).map("".join))
@example("/me")
@example("//evil.example")
@example("/\\evil.example")
@example("/\t/evil.example")
@example("https://evil.example")
def test_safe_next_only_yields_paths_on_this_site(candidate: str) -> None:
    try:
        target = safe_next(candidate)
    except BadRequest:
        return
    if candidate == "":
        assert target == "/me"
        return
    assert target == candidate and target.startswith("/") and not target.startswith("//")
    assert "\\" not in target and not any(ch.isspace() or ord(ch) < 0x20 for ch in target)
    joined = urlsplit(urljoin("https://ssp.example.gov.cn/auth/wechat/callback", target))
    assert (joined.scheme, joined.netloc) == ("https", "ssp.example.gov.cn")


@pytest.mark.parametrize("good", ["/me", "/leaderboard?week=2026-W48", "/me#cases", "/规则", "/a/b/../c"])
def test_safe_next_accepts_site_paths(good: str) -> None:
    assert safe_next(good) == good


@settings(max_examples=200, deadline=None)
@given(nonce=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32), other=st.text(max_size=64))
def test_state_is_wechat_safe_and_bound_to_the_nonce(nonce: str, other: str) -> None:
    state = make_state("secret", nonce)
    assert state.isalnum() and state.isascii() and len(state) <= 128
    assert state_matches("secret", state, nonce)
    assert not state_matches("another secret", state, nonce)
    if other != nonce:
        assert not state_matches("secret", state, other)
        assert not state_matches("secret", make_state("secret", other), nonce)


def test_session_codec_round_trip_and_refusals() -> None:
    s = test_settings()
    codec = SessionCodec(s)
    value = codec.dump_citizen(CitizenSession("oA1", dev=True))
    assert codec.load_citizen(value) == CitizenSession("oA1", dev=True)
    assert "oA1" not in value
    assert codec.load_citizen(value + "x") is None
    assert codec.load_citizen("garbage") is None
    assert codec.load_citizen("x" * 5000) is None
    assert SessionCodec(test_settings(session_secret="other")).load_citizen(value) is None
    assert codec.load_console(value) is None  # a citizen cookie is not a console cookie (different salt)
    console = codec.console_session_for(VALIDATOR_TOKEN)
    assert console is not None and (console.name, console.role) == ("validator-1", "validator")
    assert console.fingerprint == token_fingerprint(s.session_secret.get_secret_value(), VALIDATOR_TOKEN)
    principal = codec.load_console(codec.dump_console(console))
    assert principal is not None and (principal.name, principal.role) == ("validator-1", "validator")
    assert codec.load_citizen(codec.dump_console(console)) is None
    assert codec.console_session_for(ADMIN_TOKEN) is not None
    assert codec.console_session_for(INTAKE_TOKEN) is None  # machine roles keep bearer tokens
    assert codec.console_session_for("nope") is None


@settings(max_examples=300, deadline=None)
@given(t=st.floats(0, 4e9, allow_nan=False), length=st.integers(1, 3600))
def test_window_covers_the_instant_and_retry_after_reaches_its_end(t: float, length: int) -> None:
    w = window_at(t, length)
    assert w.index * length <= t < (w.index + 1) * length
    assert 1 <= w.retry_after <= length
    assert window_at(t + w.retry_after, length).index > w.index  # retrying after Retry-After is a new window


def test_counter_keys_are_under_the_prefix_and_hide_identities() -> None:
    key = counter_key("t1234", "public", "citizen", "oSecretOpenid", 7)
    assert key.startswith("t1234:rl:public:citizen:") and key.endswith(":7") and "oSecretOpenid" not in key
    assert key != counter_key("t1234", "public", "ip", "oSecretOpenid", 7)


@settings(max_examples=200, deadline=None)
@given(mine=st.integers(-50, 50), cutoff=st.none() | st.integers(1, 50))
def test_points_needed_is_the_least_that_passes_the_last_place(mine: int, cutoff: int | None) -> None:
    need = points_needed(mine, cutoff)
    assert need >= 0
    bar = 0 if cutoff is None else cutoff  # must end strictly above the last place (ties go to who was first)
    assert mine + need > bar
    assert need == 0 or mine + need - 1 <= bar


def scope(points: int, rank: int | None) -> ScopeStandingOut:
    return ScopeStandingOut(ranked=rank is not None, rank=rank, points=points, total=None, above=[], below=[])


def standing(**kw: object) -> StandingOut:
    values: dict[str, object] = {
        "week": "2026-W48",
        "message": "本周第 12 名",
        "weekly": scope(3, 12),
        "all_time": scope(37, 105),
        "eligible": True,
        "eligibility_note": None,
        "prize_places": 80,
        "prize_rank": None,
        "tier": None,
        "points_to_prize": 4,
    }
    values.update(kw)
    return StandingOut.model_validate(values)


def test_rank_texts() -> None:
    rules = "https://ssp.example.gov.cn/rules"
    assert rank_text(standing(), rules, 80) == (
        "【我的积分】2026年第48周\n本周积分：3 分，排名第 12 名\n累计积分：37 分，排名第 105 名\n"
        "距本周获奖名单（前 80 名）还差 4 分，加油！\n活动规则：https://ssp.example.gov.cn/rules"
    )
    third = PrizeTier(6, 20, "三等奖", 50)
    on_list = rank_text(standing(prize_rank=9, tier=third, points_to_prize=0), rules, 80)
    assert "您已进入本周获奖名单：第 9 名（三等奖），请继续保持！" in on_list
    quiet_week = rank_text(standing(weekly=scope(0, None), points_to_prize=13), rules, 80)
    assert "本周积分：0 分，本周暂未上榜" in quiet_week and "还差 13 分" in quiet_week
    note = rank_text(
        standing(eligible=False, eligibility_note="未完成实名认证，暂不参与评奖", points_to_prize=None), rules, 80
    )
    assert "未完成实名认证，暂不参与评奖。" in note and "还差" not in note
    for nobody in (None, standing(weekly=scope(0, None), all_time=scope(0, None))):
        text = rank_text(nobody, rules, 80)
        assert text.startswith("您暂未上榜。") and "前 80 名" in text and rules in text
    assert rules in help_text(rules) and "排名" in help_text(rules)
    assert rules in welcome_text(rules, 80) and "前 80 名" in welcome_text(rules, 80)


def test_redaction_filter_hides_secrets_in_logged_urls() -> None:
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        'HTTP Request: %s %s "%s"',
        (
            "GET",
            "https://api.weixin.qq.com/sns/oauth2/access_token?appid=wx1&secret=S3CRET&code=C0DE&grant_type=x",
            "HTTP/1.1 200 OK",
        ),
        None,
    )
    assert RedactSecrets().filter(record)
    message = record.getMessage()
    assert "S3CRET" not in message and "C0DE" not in message and "appid=wx1" in message and "secret=***" in message


@pytest.mark.parametrize("key", ["short", "a" * 44, "!" * 43, "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"])
def test_aes_key_must_look_like_wechats(key: str) -> None:
    with pytest.raises(ConfigError, match="WECHAT_AES_KEY"):
        load_settings(wechat_aes_key=key)


def test_wechats_sample_aes_key_is_accepted() -> None:
    key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    accepted = load_settings(wechat_aes_key=key).wechat_aes_key
    assert accepted is not None and accepted.get_secret_value() == key


def test_rate_limit_settings_are_validated() -> None:
    for field in ("rate_limit_per_ip", "rate_limit_per_citizen", "rate_limit_window_seconds"):
        with pytest.raises(ConfigError, match=field.upper()):
            load_settings(**{field: 0})
