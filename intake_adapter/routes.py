"""Intake webhook and Open311 routes, mounted by the app."""

from __future__ import annotations

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    """Attach the intake adapter's routers to the app."""
