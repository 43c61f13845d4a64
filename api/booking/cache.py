"""The slot cache: answers in Redis keyed by (tenant, location, calendar version, params).

The calendar version has two parts, both read from Postgres in the reader's transaction
and both moved in the transaction of the write that changes the calendar:
- `booking_policies.calendar_version`, bumped by every booking write (holds, confirms,
  reschedules, cancellations, expiries, policy changes) via `calendar_changed`;
- the bridge's batch counters of the calendar entities in `location_sync_states` (every
  sync batch of providers, operatories, appointment types, schedules or appointments
  increments its entity's count when it writes), so the sync path needs no extra hook.

The version is read before the calendar, so an answer stored under a version reflects at
least the data of that version; once a write commits, every reader sees the new version
and misses. There is no stale window. An entry also never outlives the soonest expiry of
a hold it saw (an expired hold must stop blocking at once), nor the TTL setting.

Redis is an accelerator only: when it fails, the answer is computed and not cached.

Slot lists are stored as raw bytes (`read_raw` / `store_raw`): a small JSON header line,
then the answer's JSON exactly as it is sent, so a hit is served without parsing it.
Each process also keeps its recently used slot answers under the same keys and validity
(answers.LocalAnswers), so a repeated request usually needs no Redis round trip at all.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from api.booking import repository
from api.booking.models import BookingPolicy
from api.practice.models import LocationSyncState

log = structlog.get_logger(__name__)

# The sync entities whose rows the availability engine reads.
CALENDAR_ENTITIES = ("providers", "operatories", "appointment-types", "schedules", "appointments")


async def calendar_changed(session: AsyncSession, tenant_id: str, location_id: str) -> None:
    """The hook for any write to a location's calendar: call it in the writing transaction
    and every cached slot answer of the location is gone when that transaction commits."""
    await repository.bump_calendar_version(session, tenant_id, location_id)


def calendar_version(policy: BookingPolicy | None, sync: LocationSyncState | None) -> str:
    entities: dict[str, Any] = (sync.entities if sync else None) or {}
    batches = sum(int((entities.get(name) or {}).get("batches", 0)) for name in CALENDAR_ENTITIES)
    return version_of(policy.calendar_version if policy else None, batches)


def version_of(policy_version: int | None, calendar_batches: int) -> str:
    """The version string from its two parts (the fast path reads them in SQL)."""
    return f"{policy_version or 0}.{calendar_batches}"


def cache_key(tenant_id: str, location_id: str, version: str, params: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    return f"chairfill:slots:{tenant_id}:{location_id}:{version}:{digest[:32]}"


async def read(redis: Redis | None, key: str, now: datetime) -> Any | None:
    """The cached answer, unless it is past its own validity (checked against the same
    clock that computed it, not only Redis's expiry)."""
    if redis is None:
        return None
    try:
        raw = await redis.get(key)
    except (RedisError, OSError):
        log.warning("slot_cache_unavailable")
        return None
    if raw is None:
        return None
    entry = json.loads(raw)
    if datetime.fromisoformat(entry["valid_until"]) <= now:
        return None
    return entry["value"]


async def store(
    redis: Redis | None,
    key: str,
    value: Any,
    *,
    ttl_seconds: int,
    now: datetime,
    not_after: datetime | None,
) -> None:
    if redis is None:
        return
    until = valid_until(now, ttl_seconds=ttl_seconds, not_after=not_after)
    if until is None:
        return
    ttl_ms = int((until - now.timestamp()) * 1000)
    if ttl_ms <= 0:
        return
    entry = {"valid_until": datetime.fromtimestamp(until, UTC).isoformat(), "value": value}
    try:
        await redis.set(key, json.dumps(entry, default=str), px=ttl_ms)
    except (RedisError, OSError):
        log.warning("slot_cache_unavailable")


async def read_raw(
    redis: Redis | None, key: str, now: datetime
) -> tuple[dict[str, Any], bytes] | None:
    """A raw entry's header and body, unless it is past its own validity."""
    if redis is None:
        return None
    try:
        raw = await redis.get(key)
    except (RedisError, OSError):
        log.warning("slot_cache_unavailable")
        return None
    if raw is None:
        return None
    head, _, body = bytes(raw).partition(b"\n")
    header: dict[str, Any] = json.loads(head)
    if header["valid_until"] <= now.timestamp():
        return None
    return header, body


def valid_until(now: datetime, *, ttl_seconds: int, not_after: datetime | None) -> float | None:
    """Until when (epoch seconds) an answer computed at `now` may be served: the TTL,
    cut at the soonest expiry of a hold it saw; None when it may not be cached."""
    if ttl_seconds <= 0:
        return None
    until = now + timedelta(seconds=ttl_seconds)
    if not_after is not None:
        until = min(until, not_after)
    return until.timestamp() if until > now else None


async def store_raw(
    redis: Redis | None,
    key: str,
    header: dict[str, Any],
    body: bytes,
    *,
    valid_until: float,
    now: datetime,
) -> None:
    if redis is None:
        return
    ttl_ms = int((valid_until - now.timestamp()) * 1000)
    if ttl_ms <= 0:
        return
    # One line of JSON (json.dumps never writes a raw newline), then the body.
    head = json.dumps({**header, "valid_until": valid_until}).encode()
    try:
        await redis.set(key, head + b"\n" + body, px=ttl_ms)
    except (RedisError, OSError):
        log.warning("slot_cache_unavailable")
