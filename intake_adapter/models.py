"""The intake inbox (ORM): every accepted event stored raw before it is applied."""

from __future__ import annotations
