"""Citizen H5 pages: 我的, leaderboards, past weeks, rules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from rewards.bootstrap import Container
from rewards.deps import container
from rewards.program import category_points, rule_lines
from rewards.web.templating import STATIC, page

router = APIRouter(include_in_schema=False)
C = Annotated[Container, Depends(container)]


def mount_static(app: FastAPI) -> None:
    """Serve the pages' stylesheet and images."""
    app.mount("/static/web", StaticFiles(directory=str(STATIC)), name="web-static")


@router.get("/rules", response_class=HTMLResponse)
def rules(c: C) -> HTMLResponse:
    """The program's rules, generated from Settings."""
    return page("rules.html", nav="rules", rules=rule_lines(c.settings), categories=category_points(c.settings))
