"""Settings (prefix REWARDS_): the only place that reads the environment."""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from rewards.errors import ConfigError
from rewards.prizes import PrizeTable, PrizeTier

Role = Literal["validator", "intake", "admin", "publisher"]
PLACEHOLDER_PREFIX = "change-me"


class Category(BaseModel):
    """A report category: its code (also the Open311 service_code), Chinese name and points per valid case."""

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=64)
    group: str = "市容环境"
    points: int = Field(default=1, ge=0)


class ApiToken(BaseModel):
    """A console/API credential and the role it grants."""

    name: str = Field(min_length=1)
    role: Role


DEFAULT_CATEGORIES: list[Category] = [
    Category(code="street_lamp", name="路灯损坏", group="市政设施"),
    Category(code="overflowing_bin", name="垃圾满溢", group="环境卫生"),
    Category(code="illegal_ad", name="违章小广告", group="市容秩序"),
    Category(code="road_damage", name="道路破损", group="市政设施"),
    Category(code="manhole_cover", name="井盖缺失", group="市政设施", points=2),
    Category(code="street_vending", name="占道经营", group="市容秩序"),
    Category(code="debris", name="乱堆物料", group="市容秩序"),
    Category(code="greenery_damage", name="绿化损坏", group="园林绿化"),
    Category(code="illegal_parking", name="违规停放", group="市容秩序"),
    Category(code="waterlogging", name="道路积水", group="市政设施"),
]

DEFAULT_TIERS: list[PrizeTier] = [
    PrizeTier(first=1, last=1, name="一等奖", value=500),
    PrizeTier(first=2, last=5, name="二等奖", value=200),
    PrizeTier(first=6, last=20, name="三等奖", value=100),
    PrizeTier(first=21, last=80, name="参与奖", value=50),
]


class Settings(BaseSettings):
    """Every tunable of the service; program rules default to DESIGN.md."""

    model_config = SettingsConfigDict(env_prefix="REWARDS_", extra="ignore", validate_default=True)

    environment: Literal["development", "production"] = "development"
    database_url: str = "sqlite:///var/rewards.db"
    redis_url: str | None = None  # None: the embedded Redis server under data_dir, shared by every process
    timezone: str = "Asia/Shanghai"
    data_dir: Path = Path("var")
    public_base_url: str = "http://127.0.0.1:8000"

    categories: list[Category] = Field(default_factory=lambda: list(DEFAULT_CATEGORIES))
    api_tokens: dict[str, ApiToken] = Field(default_factory=dict)

    # Program rules: each one changes what the engine does and what the published rules say (rewards/program.py)
    daily_award_limit: int | None = Field(default=None, ge=1)  # anti-spam, off by default
    rating_award_points: int = Field(default=0, ge=0, le=100)  # points for rating a handled report; 0 = off
    rating_award_daily_cap: int = Field(default=3, ge=1, le=100)  # rating awards per citizen per day, when on

    # Satisfaction ratings (rewards/engagement/ratings.py): the reporter rates a resolved/closed case once
    rating_window_days: int = Field(default=7, ge=1, le=365)  # counted from the resolved/closed time
    rating_comment_max_chars: int = Field(default=200, ge=1, le=200)  # an optional comment's length limit

    # Leaderboards and prizes
    prize_tiers: list[PrizeTier] = Field(default_factory=lambda: list(DEFAULT_TIERS))
    leaderboard_key_prefix: str = "rw"
    # Milestones (rewards/engagement/milestone_rules.py): derived from the ledger and the sealed prize lists, shown on
    # /me and /rules, mentioned once in the WeChat rank reply; they never change points, ranks or prizes
    milestone_valid_reports: list[int] = Field(default_factory=lambda: [1, 10, 50, 100, 500], max_length=12)
    milestone_streak_weeks: int = Field(default=4, ge=2, le=52)
    # The projector: every long-running process catches the boards up with the ledger this often (and at once
    # after a failed update); a standing is answered from the ledger, marked stale, while the boards trail the
    # ledger by more than standing_stale_after_rows entries or an update failed since the last good pass.
    projector_interval_seconds: float = Field(default=5.0, gt=0)
    standing_stale_after_rows: int = Field(default=0, ge=0)
    # Redis: short, explicit timeouts; after redis_breaker_failures failures in a row every caller skips Redis
    # for redis_breaker_open_seconds, then one probe at a time (a hung Redis never holds a request for long)
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    redis_breaker_failures: int = Field(default=3, ge=1)
    redis_breaker_open_seconds: float = Field(default=5.0, gt=0)

    # Observability (README "Observability"): log lines as text or one JSON object each, every one carrying the
    # request id; /readyz answers 503 when the database or Redis does not answer within ready_timeout_seconds or
    # the projector's last pass failed, found the boards more than ready_max_lag_rows entries or
    # ready_max_lag_seconds behind, or succeeded longer than ready_max_lag_seconds ago; /metrics needs
    # `Authorization: Bearer <metrics_token>` when one is set, and is served to loopback clients only otherwise.
    log_format: Literal["text", "json"] = "text"
    ready_timeout_seconds: float = Field(default=1.0, gt=0)
    ready_max_lag_rows: int = Field(default=1000, ge=0)
    ready_max_lag_seconds: float = Field(default=60.0, gt=0)
    metrics_token: SecretStr | None = None

    # Intake
    intake_secret: SecretStr = SecretStr(f"{PLACEHOLDER_PREFIX}-intake-secret")
    intake_replay_window_seconds: int = Field(default=300, ge=1)
    open311_api_keys: list[str] = Field(default_factory=list)
    duplicate_radius_m: float = Field(default=250.0, gt=0)
    duplicate_window_hours: float = Field(default=72.0, gt=0)
    # Open311 jurisdiction_id; None: a single-jurisdiction endpoint (a jurisdiction_id sent is then unknown, 404)
    open311_jurisdiction_id: str | None = Field(default=None, min_length=1, max_length=64)

    # Publishing
    wechat_app_id: str | None = None
    wechat_app_secret: SecretStr | None = None
    wechat_api_base: str = "https://api.weixin.qq.com/cgi-bin/"
    wechat_token: SecretStr = SecretStr(f"{PLACEHOLDER_PREFIX}-wechat-token")
    wechat_aes_key: SecretStr | None = None
    outbox_dir: Path = Path("var/outbox")
    close_cron: str = "5 0 * * mon"  # minute hour dom month dow, program time zone
    publish_cron: str = "0 10 * * mon"
    publish_max_attempts: int = Field(default=5, ge=1)
    publish_poll_seconds: float = Field(default=2.0, ge=0)
    publish_max_polls: int = Field(default=30, ge=1)  # freepublish/get polls per run before resuming later
    publish_backoff_seconds: float = Field(default=1.0, ge=0)  # first retry delay, doubled per retry (cap 60 s)
    publish_lock_seconds: int = Field(default=900, ge=10)  # per-week publish lock and scheduler job locks
    # scheduler sweep resuming unfinished publications (a crash, a slow WeChat, or a retry asked for in the console)
    publish_resume_minutes: int = Field(default=1, ge=1)
    scheduler_misfire_grace_seconds: int = Field(default=3600, ge=1)
    wechat_timeout_seconds: float = Field(default=10.0, gt=0)
    wechat_article_author: str = Field(default="随手拍", max_length=16)  # WeChat: author <= 16 characters
    wechat_cover_image: Path | None = None  # JPEG <= 64 KB; None: the packaged placeholder cover
    wechat_banner_image: Path | None = None  # PNG/JPEG < 1 MB shown atop the article; None: packaged banner
    wechat_winner_template_id: str | None = None  # set to notify each winner by template message
    leaderboard_page_path: str = "/leaderboard?week={week}"  # the H5 page the article's "阅读原文" opens

    # Review (rewards/review): 公示 with objections, the final list (定榜) and prize claims
    objection_window_days: int = Field(default=3, ge=0, le=60)  # after the first publication; 0: final at once
    objection_reason_max: int = Field(default=200, ge=10, le=2000)  # characters of an objection's reason
    claim_days: int = Field(default=30, ge=1, le=366)  # a final winner's claim code expires this long after 定榜

    # The public city-management record (/stats, rewards/stats): a week or month is computed live until it has
    # ended and stats_settle_hours have passed (late case events still count), then sealed once in SQL
    stats_settle_hours: float = Field(default=24.0, ge=0, le=24 * 31)
    stats_trend_weeks: int = Field(default=12, ge=2, le=104)  # weeks (and months) on the trend charts
    stats_live_seconds: float = Field(default=60.0, ge=0, le=3600)  # a period not sealed yet: recomputed this often

    # Web
    session_secret: SecretStr = SecretStr(f"{PLACEHOLDER_PREFIX}-session-secret")
    dev_login: bool = False

    # Identity (rewards/web): WeChat OAuth endpoints are settings so tests can point them at a loopback stand-in
    wechat_oauth_authorize_url: str = "https://open.weixin.qq.com/connect/oauth2/authorize"
    wechat_sns_api_base: str = "https://api.weixin.qq.com/sns/"
    wechat_callback_max_skew_seconds: int = Field(default=300, ge=0)  # 0: accept any callback timestamp
    session_max_age_seconds: int = Field(default=7 * 86400, ge=60)
    console_session_max_age_seconds: int = Field(default=8 * 3600, ge=60)
    # The mini program (市民通): POST /api/v1/auth/wxa exchanges a wx.login code at WeChat's code2Session
    # ({wxa_api_base}sns/jscode2session) for a citizen session; tests point wxa_api_base at a stand-in
    wxa_app_id: str | None = None
    wxa_app_secret: SecretStr | None = None
    wxa_api_base: str = "https://api.weixin.qq.com/"
    # Public rate limits: fixed windows in Redis; per client IP, and per signed-in citizen
    rate_limit_window_seconds: int = Field(default=60, ge=1)
    rate_limit_per_ip: int = Field(default=120, ge=1)
    rate_limit_per_citizen: int = Field(default=60, ge=1)
    rate_limit_sign_in_per_ip: int = Field(default=20, ge=1)  # sign-in routes (token guessing, code replay)
    # The web server (`rewards serve`, per worker process; docs/deployment.md): past server_limit_concurrency open
    # connections or running requests uvicorn answers 503; an idle keep-alive connection is closed after
    # server_timeout_keep_alive_seconds; a connection that has not sent a whole request head (line and headers, at
    # most server_max_header_bytes) within server_header_timeout_seconds is closed; server_backlog is the listen
    # queue; X-Forwarded-For/-Proto are believed from server_forwarded_allow_ips only (the reverse proxy).
    server_limit_concurrency: int = Field(default=512, ge=1)
    server_timeout_keep_alive_seconds: int = Field(default=5, ge=1)
    server_header_timeout_seconds: float = Field(default=10.0, gt=0)
    server_max_header_bytes: int = Field(default=16 * 1024, ge=1024)  # rewards.cli.server.HeadLimitsProtocol
    server_backlog: int = Field(default=2048, ge=1)
    server_forwarded_allow_ips: str = "127.0.0.1"

    @model_validator(mode="before")
    @classmethod
    def _removed_settings(cls, data: object) -> object:
        # Settings that no rule enforces would let the published rules promise what the engine refuses
        given = set(data) if isinstance(data, dict) else set()
        for name, why in REMOVED_SETTINGS.items():
            if name in given or f"REWARDS_{name.upper()}" in os.environ:
                raise ValueError(f"REWARDS_{name.upper()} no longer exists: {why}")
        return data

    @field_validator("wechat_aes_key")
    @classmethod
    def _aes_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        # WeChat's EncodingAESKey: 43 base64 characters that decode (with one "=") to a 32-byte AES key
        if value is None:
            return value
        raw = value.get_secret_value()
        try:
            ok = len(raw) == 43 and len(base64.b64decode(raw + "=", validate=True)) == 32
        except binascii.Error:
            ok = False
        if not ok:
            raise ValueError("must be WeChat's 43-character EncodingAESKey")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, value: list[Category]) -> list[Category]:
        codes = [c.code for c in value]
        if len(set(codes)) != len(codes):
            raise ValueError("category codes must be unique")
        if not value:
            raise ValueError("at least one category is required")
        return value

    @field_validator("milestone_valid_reports")
    @classmethod
    def _milestone_counts(cls, value: list[int]) -> list[int]:
        if any(n < 1 for n in value) or value != sorted(set(value)):
            raise ValueError("must be distinct positive counts in ascending order, e.g. [1, 10, 50, 100, 500]")
        return value

    @field_validator("prize_tiers")
    @classmethod
    def _tiers_are_sound(cls, value: list[PrizeTier]) -> list[PrizeTier]:
        PrizeTable(value)  # raises ValueError naming the problem
        return value

    @model_validator(mode="after")
    def _production_is_safe(self) -> Settings:
        if self.environment == "production":
            for name in ("intake_secret", "session_secret", "wechat_token"):
                value = getattr(self, name).get_secret_value()
                if value.startswith(PLACEHOLDER_PREFIX) or not value.strip():  # an empty key signs for anyone
                    raise ValueError(f"REWARDS_{name.upper()} is empty or left at its placeholder in production")
            credentials = {
                "REWARDS_API_TOKENS": list(self.api_tokens),
                "REWARDS_OPEN311_API_KEYS": self.open311_api_keys,
                "REWARDS_WECHAT_APP_SECRET": [
                    self.wechat_app_secret.get_secret_value() if self.wechat_app_secret else ""
                ],
                "REWARDS_WXA_APP_SECRET": [self.wxa_app_secret.get_secret_value() if self.wxa_app_secret else ""],
            }
            for env, values in credentials.items():
                if any(v.startswith(PLACEHOLDER_PREFIX) for v in values):
                    raise ValueError(f"{env} holds a placeholder value in production")
            if self.dev_login:
                raise ValueError("REWARDS_DEV_LOGIN cannot be enabled in production")
        return self

    @property
    def tz(self) -> ZoneInfo:
        """The program's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def prize_table(self) -> PrizeTable:
        """The validated prize table (tiers best first, prize places)."""
        return PrizeTable(self.prize_tiers)

    def category(self, code: str) -> Category | None:
        """Return the category with this code, or None."""
        return next((c for c in self.categories if c.code == code), None)


REMOVED_SETTINGS = {
    "first_reporter_only": "only the first report of a problem earns, always: later ones get the verdict duplicate",
    "anonymous_earns": "an anonymous report has no citizen to credit, so it never earns points",
}
_UNPARSABLE_FIELD = re.compile(r'field "(\w+)"')
SECRET_KEYED = frozenset({"api_tokens"})  # settings whose keys are themselves secrets: never echoed in errors


def load_settings(**overrides: object) -> Settings:
    """Build Settings from the environment; raise ConfigError naming the bad setting (never echoing a secret)."""
    # `from None`: the pydantic error, printed in a traceback as its cause, would show the values (and the keys of
    # REWARDS_API_TOKENS, which are the tokens themselves)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_input=False, include_url=False):
            parts = [str(p) for p in err["loc"]]
            if len(parts) > 1 and parts[0] in SECRET_KEYED:
                parts[1] = "<token>"
            loc = ".".join(parts) or "settings"
            name = f"REWARDS_{parts[0].upper()}" if parts else "settings"
            problems.append(f"{name} ({loc}): {err['msg']}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from None
    except SettingsError as exc:  # a JSON setting that is not JSON: name it, never quote it
        field = _UNPARSABLE_FIELD.search(str(exc))
        name = f"REWARDS_{field.group(1).upper()}" if field else "a JSON setting"
        raise ConfigError(f"invalid settings: {name} is not valid JSON") from None
