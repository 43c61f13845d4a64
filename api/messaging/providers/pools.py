"""Provider connections kept open across messages, per event loop.

Open sockets (SMTP connections, an HTTP keep-alive pool) belong to the event loop that
opened them, so each running loop has its own registry: a worker process has one for
its life; tests, which run several loops, never share a socket across them. A
registry holds at most MAX_POOLS pools (one per tenant and provider settings); the
least recently used is closed when another is needed. `close_pools()` at shutdown."""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Protocol, TypeVar

MAX_POOLS = 64


class Closable(Protocol):
    async def close(self) -> None: ...


P = TypeVar("P", bound=Closable)


class Pools:
    def __init__(self) -> None:
        self._pools: OrderedDict[Hashable, Any] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, key: Hashable, make: Callable[[], P]) -> P:
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool  # type: ignore[no-any-return]
        made = make()
        self._pools[key] = made
        while len(self._pools) > MAX_POOLS:
            _, evicted = self._pools.popitem(last=False)
            task = asyncio.get_running_loop().create_task(evicted.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return made

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            await pool.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pools] = weakref.WeakKeyDictionary()


def loop_pools() -> Pools:
    loop = asyncio.get_running_loop()
    pools = _by_loop.get(loop)
    if pools is None:
        pools = _by_loop[loop] = Pools()
    return pools


async def close_pools() -> None:
    """Close every provider connection this loop holds (worker shutdown)."""
    pools = _by_loop.pop(asyncio.get_running_loop(), None)
    if pools is not None:
        await pools.close()
