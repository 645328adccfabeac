"""The Jinja2 environment of the citizen and console pages (autoescaped, strict)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from rewards.cases.lifecycle import STATUS_LABELS

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def local_time(value: datetime | None, tz: str = "Asia/Shanghai", fmt: str = "%m-%d %H:%M") -> str:
    """Format an instant in the program's time zone."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Return the shared environment (built once)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "xml"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local"] = local_time
    env.globals["status_label"] = lambda s: STATUS_LABELS.get(s, s)
    return env


def page(name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render a template into an HTML response."""
    context.setdefault("nav", "")
    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
