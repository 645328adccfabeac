"""Weekly snapshots: the closed week's top list with prize tiers, immutable once stored."""

from __future__ import annotations
