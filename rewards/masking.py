"""Masking of personal data on public lists (pure): 张*明, 138****1234; openids never appear."""

from __future__ import annotations


def mask_name(name: str | None) -> str:
    """Mask a name: keep the first and last character (张*明, 李*), else a neutral label."""
    if not name or not name.strip():
        return "匿名市民"
    n = name.strip()
    if len(n) == 1:
        return "*"
    if len(n) == 2:
        return n[0] + "*"
    return n[0] + "*" * (len(n) - 2) + n[-1]


def mask_phone(phone: str | None) -> str | None:
    """Mask a phone number: first three and last four digits (138****1234)."""
    if not phone:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
