"""The one place code asks for "now", so tests can move time (time-machine) and
services can be handed a fixed instant."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
