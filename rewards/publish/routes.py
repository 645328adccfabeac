"""HTTP routes of the publish domain."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
