"""Real-browser harness: Debian's Chromium driven by Playwright (the app is served by tests.fakes.live)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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


def chromium_path() -> str | None:
    """Debian's Chromium, if installed."""
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def save_screenshot(page: object, name: str) -> None:
    """Keep a screenshot under docs/screenshots when SAVE_SCREENSHOTS=1 (the README shows them)."""
    if os.environ.get("SAVE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)  # type: ignore[attr-defined]
