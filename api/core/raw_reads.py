"""A few plain asyncpg connections for single statements on the hottest path.

The slot fast path (api/booking/fast_path.py) runs one statement per request, outside any
transaction. asyncpg's Pool cost ~50 µs of CPU around each one (an acquire through a
queue, a shielded task per release, a reset), as much as the statement itself; here an
idle connection is taken from a list and put back.

A statement that fails or is cancelled takes its connection with it (its state is then
unknown); a connection the server closed is replaced on the next take. At most `size`
are open; beyond that, callers wait for one to come back.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

import asyncpg


class RawReads:
    def __init__(
        self, connect_arguments: dict[str, Any], *, size: int = 8, wait_seconds: float = 5.0
    ) -> None:
        self._arguments = connect_arguments
        self._size = size
        # How long a caller waits for a busy connection to come back (then TimeoutError).
        self._wait_seconds = wait_seconds
        self._idle: list[asyncpg.Connection] = []
        self._waiting: collections.deque[asyncio.Future[asyncpg.Connection | None]] = (
            collections.deque()
        )
        self._open = 0
        self._closed = False

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        connection = await self._take()
        try:
            row: asyncpg.Record | None = await connection.fetchrow(query, *args)
        except BaseException:
            self._discard(connection)
            raise
        self._give_back(connection)
        return row

    async def _take(self) -> asyncpg.Connection:
        if self._closed:
            raise asyncpg.InterfaceError("the raw read connections are closed")
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
            self._open -= 1
        if self._open < self._size:
            self._open += 1
            try:
                opened: asyncpg.Connection = await asyncpg.connect(**self._arguments)
            except BaseException:
                self._open -= 1
                self._wake_one(None)  # a waiter may open one in its place
                raise
            return opened
        waiter: asyncio.Future[asyncpg.Connection | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(self._wait_seconds):
                handed = await waiter
        except BaseException:
            # Handed a connection, or a free place, just as this caller gave up: pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                given = waiter.result()
                if given is not None:
                    self._give_back(given)
                else:
                    self._wake_one(None)
            raise
        return handed if handed is not None else await self._take()

    def _give_back(self, connection: asyncpg.Connection) -> None:
        if self._closed or connection.is_closed():
            self._discard(connection)
            return
        if not self._wake_one(connection):
            self._idle.append(connection)

    def _wake_one(self, connection: asyncpg.Connection | None) -> bool:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return True
        return False

    def _discard(self, connection: asyncpg.Connection) -> None:
        self._open -= 1
        connection.terminate()
        self._wake_one(None)

    async def close(self) -> None:
        """Refuse new statements, fail the waiting callers, close the idle connections
        (those in use are closed when they come back)."""
        self._closed = True
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_exception(asyncpg.InterfaceError("the raw read connections closed"))
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        await asyncio.gather(
            *(connection.close(timeout=5) for connection in idle), return_exceptions=True
        )
