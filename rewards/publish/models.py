"""Publication records: one per week, moving pending -> drafted -> submitted -> published | failed."""

from __future__ import annotations
