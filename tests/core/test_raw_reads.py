"""The slot fast path's connections (api/core/raw_reads.py), against the test database."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from api.core.db import get_engine
from api.core.raw_reads import RawReads
from api.core.state import asyncpg_arguments


def _arguments(database_url: str) -> dict[str, object]:
    """What the app hands RawReads: the engine's own connection arguments."""
    return asyncpg_arguments(get_engine(database_url))


@pytest.fixture
async def reads(settings):
    connections = RawReads(_arguments(settings.database_url), size=2)
    yield connections
    await connections.close()


async def test_more_callers_than_connections_wait_for_one(reads):
    rows = await asyncio.gather(
        *(reads.fetchrow("SELECT $1::int, pg_backend_pid()", n) for n in range(20))
    )
    assert [row[0] for row in rows] == list(range(20))
    assert len({row[1] for row in rows}) <= 2  # never more than `size` connections
    assert reads._open == len(reads._idle) <= 2


async def test_a_failed_statement_takes_its_connection_with_it(reads):
    first = (await reads.fetchrow("SELECT pg_backend_pid()"))[0]
    with pytest.raises(asyncpg.PostgresError):
        await reads.fetchrow("SELECT 1 / 0")
    assert reads._open == 0 and not reads._idle
    again = (await reads.fetchrow("SELECT pg_backend_pid()"))[0]
    assert again != first and reads._open == 1


async def test_a_connection_the_server_closed_is_replaced(reads, sessions):
    first = (await reads.fetchrow("SELECT pg_backend_pid()"))[0]
    async with sessions() as session:
        await session.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
    await asyncio.sleep(0.2)  # the goodbye reaches the idle connection
    replacement = (await reads.fetchrow("SELECT pg_backend_pid()"))[0]
    assert replacement != first and reads._open == 1


async def test_a_cancelled_caller_leaves_the_others_served(reads):
    slow = [asyncio.create_task(reads.fetchrow("SELECT pg_sleep(0.3)")) for _ in range(2)]
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(reads.fetchrow("SELECT 7"))
    await asyncio.sleep(0.05)
    slow[0].cancel()  # its connection is discarded, a slot opens
    row = await asyncio.wait_for(waiting, 3)
    assert row[0] == 7
    await asyncio.gather(*slow, return_exceptions=True)
    assert reads._open <= 2


async def test_closed_connections_refuse_new_statements(settings):
    reads = RawReads(_arguments(settings.database_url), size=1)
    assert (await reads.fetchrow("SELECT 1"))[0] == 1
    await reads.close()
    with pytest.raises(asyncpg.InterfaceError):
        await reads.fetchrow("SELECT 1")


async def test_a_caller_waits_for_a_busy_connection_only_so_long(settings):
    reads = RawReads(_arguments(settings.database_url), size=1, wait_seconds=0.2)
    try:
        busy = asyncio.create_task(reads.fetchrow("SELECT pg_sleep(0.6)"))
        await asyncio.sleep(0.1)
        with pytest.raises(TimeoutError):
            await reads.fetchrow("SELECT 1")
        await busy
        assert (await reads.fetchrow("SELECT 2"))[0] == 2
        assert reads._open == 1 and not reads._waiting
    finally:
        await reads.close()


async def test_closing_fails_the_waiting_callers(settings):
    reads = RawReads(_arguments(settings.database_url), size=1)
    busy = asyncio.create_task(reads.fetchrow("SELECT pg_sleep(0.3)"))
    await asyncio.sleep(0.1)
    waiting = asyncio.create_task(reads.fetchrow("SELECT 1"))
    await asyncio.sleep(0.05)
    await reads.close()
    with pytest.raises(asyncpg.InterfaceError):
        await waiting
    await busy  # the statement in progress finishes; its connection is then closed
    assert reads._open == 0
