"""Real-browser harness: Debian's Chromium driven by Playwright (the app is served by tests.fakes.live).

The `browser` and `site` fixtures (tests/e2e/conftest.py) use these helpers; so do the browser test modules.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import VALIDATOR_TOKEN

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
# fits a phone: nothing wider than the screen, no horizontal scrolling (a pixel of rounding allowed)
FITS = "document.documentElement.scrollWidth <= window.innerWidth && document.body.scrollWidth <= window.innerWidth"
# navigation items off the screen or touching its edge
NAV_OUTSIDE = """() => Array.from(document.querySelectorAll('header nav a, header nav span, header .brand'))
  .filter(e => { const r = e.getBoundingClientRect(); return r.left < 4 || r.right > window.innerWidth - 4; })
  .map(e => e.textContent)"""


def chromium_path() -> str | None:
    """Debian's Chromium, if installed."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def save_screenshot(page: Any, name: str, full_page: bool = False) -> None:
    """Keep a screenshot under docs/screenshots when SAVE_SCREENSHOTS=1 (the README shows them)."""
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def block_outside(page: Any, base: str) -> list[str]:
    """Abort every request that does not go to the service under test; return the list of what was blocked."""
    blocked: list[str] = []

    def handle(route: Any) -> None:
        url = route.request.url
        if url.startswith(base + "/") or url == base:
            route.continue_()
        else:
            blocked.append(url)
            route.abort()

    page.route("**/*", handle)
    return blocked


def sign_in_console(page: Any, base: str, token: str = VALIDATOR_TOKEN) -> None:
    """Sign in to the console through its form, as a validator does."""
    page.goto(f"{base}/console/login")
    page.fill("#token", token)
    page.click("#sign-in")
    page.wait_for_url(f"{base}/console")
