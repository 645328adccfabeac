"""Fixtures of the real-browser tests: one headless Chromium per run, the app served on a loopback socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from rewards.bootstrap import Container
from tests.conftest import IN_CI, MakeContainer, test_settings
from tests.e2e.browser import FLAGS, chromium_path
from tests.fakes.live import live_server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright (no browser download); skipped locally, a failure under CI, if missing."""
    path = chromium_path()
    if path is None:
        if IN_CI:
            pytest.fail("Debian's chromium is not installed (scripts/test installs it)", pytrace=False)
        pytest.skip("chromium not installed")
    # imported here, not at the top: collecting the e2e tests must not need Playwright where Chromium is absent
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def site(pg_engine: Engine, make_container: MakeContainer, tmp_path: Path) -> Iterator[tuple[Container, str]]:
    """The service with the development sign-in on, its outbox in a temporary folder, served on loopback."""
    c = make_container(test_settings(dev_login=True, outbox_dir=tmp_path / "outbox"), engine=pg_engine)
    with live_server(c) as url:
        yield c, url
