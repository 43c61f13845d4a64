"""Engines are pure: their tests need no database or Redis, so the suite-wide isolation
fixture (which truncates Postgres and flushes Redis after each test) is replaced here."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolate() -> None:
    """Nothing to clean up after a pure-function test."""
