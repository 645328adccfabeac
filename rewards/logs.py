"""Logging setup: one format, secrets never logged."""

from __future__ import annotations

import logging


def get_logger(name: str) -> logging.Logger:
    """Return the service's logger for a component."""
    return logging.getLogger(f"rewards.{name}")


def configure(level: str = "INFO") -> None:
    """Configure the root logger once for CLI processes."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
