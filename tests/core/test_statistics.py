"""api/core/statistics.py: the after-commit ANALYZE of a table bulk work made stale."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from api.core import statistics
from api.core.db import async_url, unit_of_work


async def _analyzed(sessions, table: str) -> int:
    async with unit_of_work(sessions) as session:
        count = await session.scalar(
            text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = :t"), {"t": table}
        )
    return int(count or 0)


async def test_the_analyze_leaves_the_pooled_connection_as_it_found_it(settings, sessions):
    # One pooled connection: the one that ran the ANALYZE is the one handed out next, and
    # its timeouts must be the server's defaults again.
    engine = create_async_engine(async_url(settings.database_url), pool_size=1, max_overflow=0)
    try:
        before = await _analyzed(sessions, "providers")
        await statistics._analyze(engine, "providers")
        assert await _analyzed(sessions, "providers") == before + 1
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("SHOW lock_timeout")).scalar() == "0"
            assert (await connection.exec_driver_sql("SHOW statement_timeout")).scalar() == "0"
    finally:
        await engine.dispose()


async def test_an_analyze_that_fails_only_logs(settings, caplog):
    engine = create_async_engine(async_url(settings.database_url), pool_size=1, max_overflow=0)
    try:
        await statistics._analyze(engine, "no_such_table")  # the work has committed: no raise
    finally:
        await engine.dispose()
    assert "ANALYZE no_such_table skipped" in caplog.text


async def test_asked_twice_in_one_transaction_it_analyzes_once(sessions, monkeypatch):
    monkeypatch.setattr(statistics, "MIN_STALE_ROWS", 1)
    before = await _analyzed(sessions, "providers")
    async with unit_of_work(sessions) as session:
        assert await statistics.refresh_when_stale(session, "providers", 10)
        assert not await statistics.refresh_when_stale(session, "providers", 10)
        assert not await statistics.refresh_when_stale(session, "providers", 0)
    assert await _analyzed(sessions, "providers") == before + 1
