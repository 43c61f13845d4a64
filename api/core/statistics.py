"""Planner statistics refreshed right after bulk writes.

A table the planner has no statistics for (never analyzed, as every new practice's
mirror and every new campaign's rows are) looks like a few rows per tenant. Statements
that join a batch of keys to it are then planned the wrong way round: the table's rows of
the tenant (or the location, or the campaign) are read whole for each batch, so a bulk
job's work grows with the square of its size. Autovacuum analyzes such a table within a
minute or so; a first sync or a large campaign is done with sooner. So the jobs that
write many rows ask for an ANALYZE once they commit, when the rows written since the
last one pass STALE_SHARE of the table (and MIN_STALE_ROWS): the table is analyzed each
time it has doubled, a handful of times on its way to millions of rows. (The PMS sync
asks once per location instead, `refresh_after_commit`: its look-ups do not depend on
the statistics beyond knowing the location, api/practice/ingest.py.)"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from api.core.db import after_commit

logger = logging.getLogger(__name__)

STALE_SHARE = 1.0
MIN_STALE_ROWS = 5_000
_SCHEDULED = "statistics_refresh"


_STALENESS = text(
    "SELECT greatest(c.reltuples, 0) AS counted, coalesce(s.n_mod_since_analyze, 0) AS modified "
    "FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
    "WHERE c.oid = CAST(:table AS regclass)"
)


async def refresh_when_stale(session: AsyncSession, table: str, written: int) -> bool:
    """ANALYZE `table` after this session commits (once, however many calls ask), if its
    statistics are off by more than STALE_SHARE once the `written` rows count. Whether it
    will be. Call it after the work's other after-commit steps (job pushes) are asked for:
    callbacks run in order, and an ANALYZE can take a moment."""
    if written <= 0:
        return False
    await session.connection()  # begins the transaction the set below belongs to
    if table in _scheduled(session):
        return False
    # Rows written since the last ANALYZE by earlier transactions count too (a campaign
    # records its messages 500 at a time).
    row = (await session.execute(_STALENESS, {"table": table})).one()
    if row.modified + written <= max(STALE_SHARE * row.counted, MIN_STALE_ROWS):
        return False
    return await refresh_after_commit(session, table)


async def refresh_after_commit(session: AsyncSession, table: str) -> bool:
    """ANALYZE `table` after this session commits, once however many calls ask (the
    same ordering advice as `refresh_when_stale`). Whether this call scheduled it."""
    await session.connection()  # begins the transaction the set below belongs to
    scheduled = _scheduled(session)
    if table in scheduled:
        return False
    scheduled.add(table)
    after_commit(session, _analyzer(session, table))
    return True


def _analyzer(session: AsyncSession, table: str) -> Callable[[], Awaitable[None]]:
    bind = session.bind
    engine = bind.engine if isinstance(bind, AsyncConnection) else bind
    assert engine is not None, "a session bound to an engine"

    return lambda: _analyze(engine, table)


def _scheduled(session: AsyncSession) -> set[str]:
    """Tables this transaction will analyze after it commits (a rolled-back transaction's
    set is left behind with it)."""
    sync = session.sync_session
    transaction = sync.get_transaction()
    found: tuple[object, set[str]] | None = sync.info.get(_SCHEDULED)
    if found is None or found[0] is not transaction:
        found = (transaction, set())
        sync.info[_SCHEDULED] = found
    return found[1]


async def _analyze(engine: AsyncEngine, table: str) -> None:
    """On a connection of its own, as the tables' owner (a tenant's transaction runs as a
    role that may not). The whole table: an ANALYZE of some columns does not reset the
    count of rows changed since the last one. Best effort and bounded: the work has
    committed, so nothing here may fail it; if autovacuum or another job is analyzing the
    table already, this one does not wait."""
    try:
        # In a transaction of its own, so the timeouts are LOCAL: a plain SET would stay
        # on the pooled connection for whatever request gets it next.
        async with engine.begin() as connection:
            await connection.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
            await connection.exec_driver_sql("SET LOCAL statement_timeout = '30s'")
            await connection.exec_driver_sql(f"ANALYZE {table}")
    except Exception as exc:
        logger.warning("ANALYZE %s skipped: %s", table, exc)
