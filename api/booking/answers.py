"""Slot answers as bytes, and this process's copies of them.

A slot list is serialized once (`SlotList`) and served from those bytes: a hit cuts out
the slots that have fallen inside the notice period and wraps the rest (`render`), with
no parse and re-encode. Its gzip form is made once per rendering and reused: a 31-day
answer for a busy location is ~280 KB of JSON and ~10 KB gzipped, which matters for a
patient on a phone and for the server (compressing it costs ~3 ms, sending it raw more).

`InFlight` lets the requests that miss the same answer at the same time wait for one
reading or computation of it: when a busy widget's answer expires, the hundred requests
arriving during its ~50 ms computation would otherwise each compute it, on the same core,
and all answer late (a stampede every TTL).

An answer that is still asked for near the end of its validity is computed again in the
background (`claim_refresh`, fast_path.py) while the old one, still valid, is served: the
computation no longer stalls the requests that arrive meanwhile.

`LocalAnswers` keeps recently used answers in this process, in front of Redis, under the
same key (tenant, location, calendar version, parameters) and the same validity as the
Redis entry. The key changes with every calendar write and the validity never outlives
a hold the answer saw, so a local copy is exactly as fresh as Redis's: a hit then needs
no Redis round trip and no parsing of the entry's index."""

from __future__ import annotations

import asyncio
import bisect
import functools
import gzip
import itertools
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import TypeAdapter

from api.booking.schemas import SlotOut

_SLOT = TypeAdapter(SlotOut)
_AS_OF = TypeAdapter(datetime | None)
# Below this, gzip saves too little to be worth a header (Starlette's GZip default too).
GZIP_MIN_BYTES = 500
# Each entry keeps at most this many renderings (a notice cut moves every slot step).
RENDERINGS_PER_ENTRY = 2


@dataclass(frozen=True)
class SlotList:
    """A slot answer's `data`, serialized once: each slot's JSON back to back (commas
    between, no brackets), each slot's start (epoch seconds) and where its JSON begins
    (plus a sentinel past the end)."""

    body: bytes
    starts: list[float]
    offsets: list[int]

    @classmethod
    def of(cls, slots: list[SlotOut]) -> SlotList:
        items = [_SLOT.dump_json(slot) for slot in slots]
        offsets, at = [], 0
        for item in items:
            offsets.append(at)
            at += len(item) + 1
        offsets.append(at)
        return cls(b",".join(items), [slot.start.timestamp() for slot in slots], offsets)

    def kept(self, earliest: float) -> int:
        """How many slots start at or after `earliest` (this number names the cut: the
        kept slots of two cuts with the same count are the same slots)."""
        if self._in_order:
            return len(self.starts) - bisect.bisect_left(self.starts, earliest)
        return sum(1 for start in self.starts if start >= earliest)

    def starting_from(self, earliest: float) -> bytes:
        """The items of the slots starting at or after `earliest`."""
        if self._in_order:
            # The usual case (the engine answers in start order): a prefix is cut.
            first = bisect.bisect_left(self.starts, earliest)
            if first == 0:
                return self.body
            if first == len(self.starts):
                return b""
            return self.body[self.offsets[first] :]
        return b",".join(
            self.body[self.offsets[i] : self.offsets[i + 1] - 1]
            for i, start in enumerate(self.starts)
            if start >= earliest
        )

    @functools.cached_property
    def _in_order(self) -> bool:
        return all(a <= b for a, b in itertools.pairwise(self.starts))


def slots_json(items: bytes, data_as_of: datetime | None, time_zone: str) -> bytes:
    """`SlotsOut` as JSON, byte for byte what pydantic would write, around ready items."""
    return b"".join(
        (
            b'{"data":[',
            items,
            b'],"data_as_of":',
            _AS_OF.dump_json(data_as_of),
            b',"time_zone":',
            json.dumps(time_zone).encode(),
            b"}",
        )
    )


@dataclass
class RenderedAnswer:
    """One answer as sent: the JSON, and its gzip form made on first use."""

    body: bytes
    _gzipped: bytes | None = field(default=None, repr=False)

    def gzipped(self) -> bytes | None:
        """The body gzipped, or None when it is too small to be worth it."""
        if len(self.body) < GZIP_MIN_BYTES:
            return None
        if self._gzipped is None:
            # mtime=0: the same answer always compresses to the same bytes.
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped

    @property
    def size(self) -> int:
        return len(self.body) + len(self._gzipped or b"")


@dataclass
class _Entry:
    valid_until: float
    slots: SlotList
    # When this process got it (epoch seconds), and whether a refresh was handed out.
    stored_at: float = 0.0
    refresh_claimed: bool = False
    renderings: OrderedDict[tuple[int, str, str], RenderedAnswer] = field(
        default_factory=OrderedDict
    )

    @property
    def size(self) -> int:
        return len(self.slots.body) + sum(r.size for r in self.renderings.values())


def render(
    slots: SlotList, earliest: float, data_as_of: datetime | None, time_zone: str
) -> RenderedAnswer:
    """The answer for a request: the slots from `earliest` on, wrapped."""
    return RenderedAnswer(slots_json(slots.starting_from(earliest), data_as_of, time_zone))


class LocalAnswers:
    """Recently used slot answers of this process, least recently used out first, within
    a byte budget."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0

    def get(self, key: str, now: datetime) -> SlotList | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.valid_until <= now.timestamp():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.slots

    def put(self, key: str, slots: SlotList, valid_until: float) -> None:
        if key in self._entries:
            self._drop(key)
        entry = _Entry(valid_until, slots, stored_at=time.time())
        if entry.size > self.max_bytes:
            return
        self._entries[key] = entry
        self._bytes += entry.size
        self._evict()

    def claim_refresh(self, key: str, now: datetime, ahead_seconds: float) -> bool:
        """True, once per entry, when the entry has less than `ahead_seconds` left and a
        computation now could outlive it: the caller then refreshes it while the entry is
        still served. An entry that was this short-lived from the start (cut by a hold's
        expiry) is left to expire: a new computation would end at the same instant."""
        entry = self._entries.get(key)
        if entry is None or entry.refresh_claimed:
            return False
        left = entry.valid_until - now.timestamp()
        if not 0 < left < ahead_seconds or entry.valid_until - entry.stored_at < ahead_seconds:
            return False
        entry.refresh_claimed = True
        return True

    def render(
        self,
        key: str,
        slots: SlotList,
        earliest: float,
        data_as_of: datetime | None,
        time_zone: str,
    ) -> RenderedAnswer:
        """`render`, remembered on the entry (when it is still here) so the same cut of
        the same answer is wrapped and compressed once."""
        entry = self._entries.get(key)
        if entry is None or entry.slots is not slots:
            return render(slots, earliest, data_as_of, time_zone)
        as_of = data_as_of.isoformat() if data_as_of else ""
        variant = (slots.kept(earliest), as_of, time_zone)
        found = entry.renderings.get(variant)
        if found is None:
            found = render(slots, earliest, data_as_of, time_zone)
            # Compressed now, so the budget counts it; nearly every client takes gzip.
            found.gzipped()
            entry.renderings[variant] = found
            self._bytes += found.size
            while len(entry.renderings) > RENDERINGS_PER_ENTRY:
                _, old = entry.renderings.popitem(last=False)
                self._bytes -= old.size
            self._evict()
        return found

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.size

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


class InFlight:
    """One reading or computation at a time per answer key in this process; whoever
    asks for the same key meanwhile waits for it and shares the result."""

    def __init__(self) -> None:
        self._pending: dict[str, asyncio.Future[SlotList | None]] = {}

    async def once(self, key: str, fill: Callable[[], Awaitable[SlotList]]) -> SlotList:
        pending = self._pending.get(key)
        if pending is not None:
            # Shielded: a waiter that goes away must not cancel the others' answer.
            shared = await asyncio.shield(pending)
            if shared is not None:
                return shared
            # The first request failed (its own problem, its own session): fill for this one.
            return await fill()
        future: asyncio.Future[SlotList | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            found = await fill()
        except BaseException:
            future.set_result(None)
            raise
        else:
            future.set_result(found)
            return found
        finally:
            del self._pending[key]

    async def shared(self, key: str) -> SlotList | None:
        """The answer being read or computed for `key` right now, once it is there; None
        when there is none in flight (or it failed)."""
        pending = self._pending.get(key)
        return None if pending is None else await asyncio.shield(pending)

    def __len__(self) -> int:
        return len(self._pending)
