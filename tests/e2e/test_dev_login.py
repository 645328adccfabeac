"""The development sign-in: off by default, impossible with production settings, clearly marked when on."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from rewards.app import create_app
from rewards.bootstrap import bootstrap
from rewards.cases.models import Citizen
from rewards.config import Settings
from rewards.errors import ConfigError
from tests.conftest import test_settings

PRODUCTION = {
    "environment": "production",
    "intake_secret": "prod-intake-5e1",
    "session_secret": "prod-session-9a2",
    "wechat_token": "prod-wechat-token-77",
}


def client_for(container: Any, settings: Settings) -> TestClient:
    other = bootstrap(settings, clock=container.clock, engine=container.engine, redis_client=container.redis)
    return TestClient(create_app(other))


def test_off_by_default(client: TestClient, container: Any) -> None:
    assert container.settings.dev_login is False
    r = client.get("/auth/dev-login", params={"openid": "oDev"}, follow_redirects=False)
    assert r.status_code == 404 and "set-cookie" not in r.headers
    with container.read() as session:
        assert session.scalar(select(Citizen).where(Citizen.openid == "oDev")) is None


def test_production_settings_refuse_it() -> None:
    with pytest.raises(ConfigError, match="REWARDS_DEV_LOGIN"):
        test_settings(dev_login=True, **PRODUCTION)


def test_production_never_serves_it_even_with_bypassed_validation(container: Any) -> None:
    forced = test_settings(**PRODUCTION).model_copy(update={"dev_login": True})  # model_copy skips validators
    assert forced.environment == "production" and forced.dev_login is True
    with client_for(container, forced) as prod:
        r = prod.get("/auth/dev-login", params={"openid": "oDev"}, follow_redirects=False)
        assert r.status_code == 404 and "set-cookie" not in r.headers


def test_on_in_development_it_signs_in_and_marks_the_session(container: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with client_for(container, test_settings(dev_login=True)) as dev:
        r = dev.get("/auth/dev-login", params={"openid": "oDev", "next": "/me"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/me"
        assert dev.get("/auth/session").json() == {"citizen": "oDev", "dev": True, "console": None}
        assert dev.get("/api/v1/citizens/oDev/points").status_code == 200
        assert dev.get("/api/v1/citizens/oSomeoneElse/points").status_code == 403
        assert dev.get("/auth/dev-login", params={"openid": "bad openid!"}).status_code == 400
        assert dev.get("/auth/dev-login", params={"openid": "oDev", "next": "//evil.example"}).status_code == 400
        assert dev.get("/auth/dev-login").status_code == 422  # openid is required
        assert "DEVELOPMENT ONLY" in dev.get("/openapi.json").text
    assert "DEVELOPMENT sign-in used" in caplog.text and "oDev" not in caplog.text
    with container.read() as session:
        assert session.scalar(select(Citizen).where(Citizen.openid == "oDev")) is not None
