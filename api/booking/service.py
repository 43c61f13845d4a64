"""Slots and next-available answers (cached, see cache.py) and the booking policy.

Holds and confirmations live in holds.py, reschedules, cancellations and expiry in
changes.py, the daily report in report.py. REST and GraphQL call these functions."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.auth.principal import Principal
from api.booking import answers, cache, repository
from api.booking.calendar import (
    buffers_of,
    engine_type,
    load_calendar,
    require_type,
    rules_of,
    unknown_type,
)
from api.booking.schemas import (
    AppointmentTypeOut,
    AppointmentTypesOut,
    NextAvailableOut,
    PolicyIn,
    PolicyOut,
    SlotOut,
    SlotsOut,
    TypeBuffers,
)
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.errors import NotFound, ValidationProblem
from api.core.settings import BookingSettings, Settings
from api.core.state import AppState
from api.engines import slots as engine
from api.practice import freshness
from api.tenancy import repository as tenancy_repository
from api.tenancy.models import Location

MAX_RANGE = timedelta(days=31)
# An answer still asked for in the last quarter of its validity is computed again then.
REFRESH_AHEAD_SHARE = 0.25
# This process's copies of recently used slot answers (see answers.py).
LOCAL_ANSWERS = answers.LocalAnswers(max_bytes=32 * 1024 * 1024)
# Slot answers this process is reading or computing right now (see answers.InFlight).
IN_FLIGHT = answers.InFlight()
_LOCAL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class BookingDeps:
    """What booking services need beyond the session: their settings and the slot cache."""

    settings: BookingSettings
    redis: Redis | None
    # The whole configuration, for what booking hands to other domains (messaging).
    app_settings: Settings
    # This process's copies of slot answers (LOCAL_ANSWERS), in front of `redis`.
    local: answers.LocalAnswers | None = None

    @classmethod
    def of(cls, state: AppState) -> BookingDeps:
        """What a request of the running app hands to booking services."""
        return cls(
            settings=state.settings.booking,
            redis=state.redis,
            app_settings=state.settings,
            local=LOCAL_ANSWERS,
        )


async def require_location(
    session: AsyncSession, principal: Principal, location_id: str
) -> Location:
    location = await tenancy_repository.get_location(
        session, principal.tenant_id, location_id, principal.location_ids
    )
    if location is None:
        raise NotFound(f"There is no location {location_id}.")
    return location


def _invalid(field: str, message: str) -> ValidationProblem:
    return ValidationProblem(f"{field}: {message}", errors=[{"field": field, "message": message}])


def parse_bound(value: str, field: str, time_zone: str, *, is_end: bool) -> datetime:
    """A local date (`2026-11-22`: its local midnight; as `end`, inclusive: the next
    midnight) or an RFC 3339 instant with an offset."""
    value = value.strip()
    if _LOCAL_DATE.match(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise _invalid(field, "not a calendar date") from None
        first, last = engine.local_dates_to_utc(day, day, time_zone)
        return last if is_end else first
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise _invalid(field, "a local date (2026-11-22) or RFC 3339 with offset") from None
    if moment.tzinfo is None:
        raise _invalid(field, "an RFC 3339 time needs its UTC offset (or send a local date)")
    return moment


def slot_out(slot: engine.Slot) -> SlotOut:
    operatories: list[str] = []
    for candidate in slot.candidates:
        operatories.extend(o for o in candidate.operatory_ids if o not in operatories)
    return SlotOut(
        start=slot.start_local,
        end=slot.end_local,
        providers=list(slot.provider_ids),
        operatories=operatories,
    )


def refusal_problem(refusal: engine.Refusal) -> ValidationProblem:
    field = (
        "provider"
        if refusal.reason == engine.RefusalReason.PROVIDER_NOT_ALLOWED
        else ("appointment_type")
    )
    return ValidationProblem(
        refusal.detail,
        errors=[{"field": field, "message": refusal.reason.value}],
        extra={"reason": refusal.reason.value},
    )


@dataclass(frozen=True)
class _Prepared:
    location: Location
    data_as_of: datetime | None
    rules: engine.BookingRules
    appointment_type: engine.AppointmentType
    version: str
    policy: Any


async def _prepare(
    session: AsyncSession,
    principal: Principal,
    deps: BookingDeps,
    location_id: str,
    appointment_type_id: str,
    now: datetime,
) -> _Prepared:
    # One query for all of it: this runs on every slot request, cache hits included.
    found = await repository.slot_context(
        session, principal.tenant_id, location_id, principal.location_ids, appointment_type_id
    )
    if found is None:
        raise NotFound(f"There is no location {location_id}.")
    location, policy = found.location, found.policy
    as_of = freshness.check_fresh(
        location.id,
        found.sync.data_as_of if found.sync else None,
        found.stale_data_threshold_minutes,
        now,
    )
    row = found.appointment_type
    if row is None:
        raise unknown_type(location.id, appointment_type_id, "appointment_type")
    return _Prepared(
        location=location,
        data_as_of=as_of,
        rules=rules_of(policy, deps.settings),
        appointment_type=engine_type(row, buffers_of(policy, row.id)),
        # The version comes from the same read as everything else, before the calendar.
        version=cache.calendar_version(policy, found.sync),
        policy=policy,
    )


# Pure functions of their arguments, run on every slot request (cache hits included) with
# the same few arguments: each is worked out once.
@functools.lru_cache(maxsize=4096)
def slot_range(start: str, end: str, time_zone: str) -> tuple[datetime, datetime]:
    """A slot request's range as instants, checked (at most 31 days, end after start)."""
    start_at = parse_bound(start, "start", time_zone, is_end=False)
    end_at = parse_bound(end, "end", time_zone, is_end=True)
    if end_at <= start_at:
        raise _invalid("end", "must be after start")
    if end_at - start_at > MAX_RANGE:
        raise _invalid("end", "the range may span at most 31 days")
    return start_at, end_at


def answer_earliest(now: datetime, min_notice_minutes: int) -> float:
    """The earliest start (epoch seconds) an answer sent now may offer."""
    return (now + timedelta(minutes=min_notice_minutes)).timestamp()


@functools.lru_cache(maxsize=4096)
def slot_answer_key(
    tenant_id: str,
    location_id: str,
    version: str,
    *,
    appointment_type_id: str,
    start_at: datetime,
    end_at: datetime,
    provider_id: str | None,
) -> str:
    """The cache key of a slot answer (see cache.py): the route and the fast path
    (fast_path.py) must name the same answer the same way."""
    params = {
        "q": "slots",
        "type": appointment_type_id,
        "start": start_at.isoformat(),
        "end": end_at.isoformat(),
        "provider": provider_id,
    }
    return cache.cache_key(tenant_id, location_id, version, params)


def _after_notice(slot: dict[str, Any], earliest: datetime) -> bool:
    return datetime.fromisoformat(slot["start"]) >= earliest


async def find_slot_answer(
    session: AsyncSession,
    principal: Principal,
    deps: BookingDeps,
    *,
    location_id: str,
    appointment_type_id: str,
    start: str,
    end: str,
    provider_id: str | None,
    now: datetime,
    refresh: bool = False,
) -> answers.RenderedAnswer:
    """The slots answer as bytes (REST sends them as they are, or their gzip form).
    `refresh`: renew it even though this process's copy is still valid."""
    prepared = await _prepare(session, principal, deps, location_id, appointment_type_id, now)
    zone = prepared.location.timezone
    start_at, end_at = slot_range(start, end, zone)
    earliest = answer_earliest(now, prepared.rules.min_notice_minutes)
    key = slot_answer_key(
        principal.tenant_id,
        location_id,
        prepared.version,
        appointment_type_id=appointment_type_id,
        start_at=start_at,
        end_at=end_at,
        provider_id=provider_id,
    )
    local = deps.local

    # A refresh takes what Redis holds only if it is not itself about to expire (another
    # process refreshed it already); otherwise it computes.
    good_until = now.timestamp() + (
        REFRESH_AHEAD_SHARE * deps.settings.slot_cache_ttl_seconds if refresh else 0
    )

    async def fill() -> answers.SlotList:
        cached = await cache.read_raw(deps.redis, key, now)
        if cached is not None and cached[0]["valid_until"] > good_until:
            header, body = cached
            found = answers.SlotList(body, header["starts"], header["offsets"])
            if local is not None:
                local.put(key, found, header["valid_until"])
            return found
        found, valid_until = await _compute_slots(
            session, prepared, deps, start_at, end_at, provider_id, now
        )
        if valid_until is not None:
            await cache.store_raw(
                deps.redis,
                key,
                {"starts": found.starts, "offsets": found.offsets},
                found.body,
                valid_until=valid_until,
                now=now,
            )
            if local is not None:
                local.put(key, found, valid_until)
        return found

    found_list = local.get(key, now) if local is not None and not refresh else None
    if found_list is None:
        found_list = await IN_FLIGHT.once(key, fill)
    # A cached slot that has since fallen inside the notice period is left out.
    if local is None:
        return answers.render(found_list, earliest, prepared.data_as_of, zone)
    return local.render(key, found_list, earliest, prepared.data_as_of, zone)


async def refresh_slot_answer(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    deps: BookingDeps,
    *,
    location_id: str,
    appointment_type_id: str,
    start: str,
    end: str,
    provider_id: str | None,
) -> None:
    """Compute a slot answer again before its cached copy expires, in a unit of work of
    its own (it runs after the request that asked for it has been answered). The version
    is read again, so the answer is stored under the calendar it was computed from."""
    async with unit_of_work(sessions, principal.tenant_id) as session:
        await find_slot_answer(
            session,
            principal,
            deps,
            location_id=location_id,
            appointment_type_id=appointment_type_id,
            start=start,
            end=end,
            provider_id=provider_id,
            now=utcnow(),
            refresh=True,
        )


async def _compute_slots(
    session: AsyncSession,
    prepared: _Prepared,
    deps: BookingDeps,
    start_at: datetime,
    end_at: datetime,
    provider_id: str | None,
    now: datetime,
) -> tuple[answers.SlotList, float | None]:
    """Slots from the calendar, and until when the answer may be cached (None: not at all)."""
    loaded = await load_calendar(
        session, prepared.location, prepared.policy, start=start_at, end=end_at, now=now
    )
    found = engine.find_slots(
        loaded.calendar,
        prepared.appointment_type,
        prepared.rules,
        now=now,
        start=start_at,
        end=end_at,
        provider_id=provider_id,
    )
    if isinstance(found, engine.Refusal):
        raise refusal_problem(found)
    valid_until = cache.valid_until(
        now, ttl_seconds=deps.settings.slot_cache_ttl_seconds, not_after=loaded.next_hold_expiry
    )
    return answers.SlotList.of([slot_out(s) for s in found]), valid_until


async def find_slots(
    session: AsyncSession,
    principal: Principal,
    deps: BookingDeps,
    *,
    location_id: str,
    appointment_type_id: str,
    start: str,
    end: str,
    provider_id: str | None,
    now: datetime,
) -> SlotsOut:
    """The slots answer as a model (GraphQL)."""
    answer = await find_slot_answer(
        session,
        principal,
        deps,
        location_id=location_id,
        appointment_type_id=appointment_type_id,
        start=start,
        end=end,
        provider_id=provider_id,
        now=now,
    )
    return SlotsOut.model_validate_json(answer.body)


async def next_available(
    session: AsyncSession,
    principal: Principal,
    deps: BookingDeps,
    *,
    location_id: str,
    appointment_type_id: str,
    provider_id: str | None,
    after: str | None,
    now: datetime,
) -> NextAvailableOut:
    prepared = await _prepare(session, principal, deps, location_id, appointment_type_id, now)
    zone = prepared.location.timezone
    after_at = parse_bound(after, "after", zone, is_end=False) if after else None
    earliest = now + timedelta(minutes=prepared.rules.min_notice_minutes)
    params = {"q": "next", "type": appointment_type_id, "provider": provider_id, "after": after}
    key = cache.cache_key(principal.tenant_id, location_id, prepared.version, params)
    cached = await cache.read(deps.redis, key, now)
    # A cached first slot that has since fallen inside the notice period is recomputed.
    if cached is None or (cached.get("slot") and not _after_notice(cached["slot"], earliest)):
        search_from = max(after_at or now, now)
        loaded = await load_calendar(
            session,
            prepared.location,
            prepared.policy,
            start=search_from,
            end=now + timedelta(days=prepared.rules.horizon_days),
            now=now,
        )
        found = engine.next_available(
            loaded.calendar,
            prepared.appointment_type,
            prepared.rules,
            now=now,
            after=after_at,
            provider_id=provider_id,
        )
        if isinstance(found, engine.Refusal):
            raise refusal_problem(found)
        cached = {"slot": slot_out(found).model_dump(mode="json") if found else None}
        await cache.store(
            deps.redis,
            key,
            cached,
            ttl_seconds=deps.settings.slot_cache_ttl_seconds,
            now=now,
            not_after=loaded.next_hold_expiry,
        )
    slot = cached.get("slot")
    return NextAvailableOut(
        data=SlotOut.model_validate(slot) if slot else None,
        data_as_of=prepared.data_as_of,
        time_zone=zone,
    )


async def bookable_types(
    session: AsyncSession, principal: Principal, location_id: str
) -> AppointmentTypesOut:
    """What a patient may book online here: the location's self-bookable types."""
    location = await require_location(session, principal, location_id)
    rows = await repository.self_bookable_types(session, location.tenant_id, location.id)
    return AppointmentTypesOut(
        data=[
            AppointmentTypeOut(id=r.id, name=r.name, duration_minutes=r.duration_minutes)
            for r in rows
        ],
        time_zone=location.timezone,
    )


# --- the booking policy --------------------------------------------------------------------


def policy_out(location_id: str, policy: Any, settings: BookingSettings) -> PolicyOut:
    rules = rules_of(policy, settings)
    buffers = (policy.type_buffers if policy else None) or {}
    return PolicyOut(
        location_id=location_id,
        min_notice_minutes=rules.min_notice_minutes,
        horizon_days=rules.horizon_days,
        step_minutes=rules.step_minutes,
        type_buffers={k: TypeBuffers.model_validate(v) for k, v in sorted(buffers.items())},
    )


async def get_policy(
    session: AsyncSession, principal: Principal, deps: BookingDeps, location_id: str
) -> PolicyOut:
    location = await require_location(session, principal, location_id)
    policy = await repository.get_policy(session, location.tenant_id, location.id)
    return policy_out(location.id, policy, deps.settings)


async def put_policy(
    session: AsyncSession,
    principal: Principal,
    deps: BookingDeps,
    location_id: str,
    data: PolicyIn,
) -> PolicyOut:
    location = await require_location(session, principal, location_id)
    for type_id in data.type_buffers:
        await require_type(
            session, location.tenant_id, location.id, type_id, f"type_buffers.{type_id}"
        )
    policy = await repository.upsert_policy(
        session,
        location.tenant_id,
        location.id,
        {
            "min_notice_minutes": data.min_notice_minutes,
            "horizon_days": data.horizon_days,
            "step_minutes": data.step_minutes,
            "type_buffers": {k: v.model_dump() for k, v in data.type_buffers.items()},
        },
    )
    return policy_out(location.id, policy, deps.settings)
