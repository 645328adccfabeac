"""FastAPI dependencies shared by every router."""

from __future__ import annotations

from fastapi import Request

from rewards.bootstrap import Container


def container(request: Request) -> Container:
    """Return the application's container."""
    c: Container = request.app.state.container
    return c
