"""Settings: invalid values stop start-up with a message naming the setting."""

from __future__ import annotations

import pytest

from rewards.config import load_settings
from rewards.errors import ConfigError


def test_defaults_are_the_embedded_program() -> None:
    s = load_settings()
    assert s.database_url.startswith("sqlite")
    assert s.redis_url is None
    assert s.timezone == "Asia/Shanghai"
    assert s.daily_award_limit is None  # anti-spam off by default: no cap


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("REWARDS_TIMEZONE", "Mars/Olympus", "REWARDS_TIMEZONE"),
        ("REWARDS_DAILY_AWARD_LIMIT", "0", "REWARDS_DAILY_AWARD_LIMIT"),
        ("REWARDS_API_TOKENS", '{"t": {"name": "x", "role": "emperor"}}', "REWARDS_API_TOKENS"),
        ("REWARDS_CATEGORIES", '[{"code": "a", "name": "A"}, {"code": "a", "name": "B"}]', "REWARDS_CATEGORIES"),
        (
            "REWARDS_PRIZE_TIERS",
            '[{"first": 1, "last": 1, "name": "a", "value": 10}, {"first": 3, "last": 5, "name": "b", "value": 5}]',
            "REWARDS_PRIZE_TIERS",
        ),
        (
            "REWARDS_PRIZE_TIERS",
            '[{"first": 1, "last": 1, "name": "a", "value": 10}, {"first": 2, "last": 5, "name": "b", "value": 50}]',
            "REWARDS_PRIZE_TIERS",
        ),
    ],
)
def test_invalid_setting_is_named(monkeypatch: pytest.MonkeyPatch, env: str, value: str, named: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert named in str(err.value)


@pytest.mark.parametrize("removed", ["anonymous_earns", "first_reporter_only"])
def test_removed_settings_are_refused_by_name(monkeypatch: pytest.MonkeyPatch, removed: str) -> None:
    with pytest.raises(ConfigError, match=f"REWARDS_{removed.upper()} no longer exists"):
        load_settings(**{removed: True})
    monkeypatch.setenv(f"REWARDS_{removed.upper()}", "true")
    with pytest.raises(ConfigError, match=f"REWARDS_{removed.upper()} no longer exists"):
        load_settings()


def test_production_refuses_placeholder_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDS_ENVIRONMENT", "production")
    with pytest.raises(ConfigError, match="placeholder"):
        load_settings()


def test_production_refuses_dev_login(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INTAKE_SECRET", "SESSION_SECRET", "WECHAT_TOKEN"):
        monkeypatch.setenv(f"REWARDS_{name}", "a-real-secret-value")
    monkeypatch.setenv("REWARDS_ENVIRONMENT", "production")
    assert load_settings().environment == "production"
    monkeypatch.setenv("REWARDS_DEV_LOGIN", "true")
    with pytest.raises(ConfigError, match="DEV_LOGIN"):
        load_settings()


REAL_SECRETS = {
    "intake_secret": "a-real-intake-secret",
    "session_secret": "a-real-session-secret",
    "wechat_token": "t0k",
}


@pytest.mark.parametrize("name", sorted(REAL_SECRETS))
@pytest.mark.parametrize("value", ["change-me-please", "", "   "])
def test_production_refuses_each_placeholder_or_empty_secret(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"REWARDS_{name.upper()}.*placeholder"):
        load_settings(environment="production", **{**REAL_SECRETS, name: value})
    assert load_settings(environment="development", **{**REAL_SECRETS, name: value})  # a bare machine's demo runs


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("api_tokens", {"change-me-token": {"name": "ops", "role": "admin"}}),
        ("open311_api_keys", ["change-me-key"]),
        ("wechat_app_secret", "change-me-app-secret"),
    ],
)
def test_production_refuses_placeholder_credentials(setting: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"REWARDS_{setting.upper()}.*placeholder"):
        load_settings(environment="production", **REAL_SECRETS, **{setting: value})
    assert load_settings(environment="production", **REAL_SECRETS)  # real values start
