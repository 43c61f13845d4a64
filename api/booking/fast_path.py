"""The slot endpoint's fast path: an answer this process already holds, sent before routing.

A booking widget asks for the same slots over and over (every visitor of a practice's
page, every change of week), and the answer is usually in this process (answers.py). What
it cost to send it was nearly all the framework's: route matching across every router,
dependency solving, an ORM credential look-up, BEGIN, the tenant's row-level-security
switch, an ORM read of the slot context and COMMIT (~3 ms of CPU against ~0.2 ms for a
bare route).

This ASGI middleware sits inside the request context (request id, access log, metrics)
and the CORS middleware, and answers `GET /v1/locations/{id}/slots` itself only when it
can prove the answer is the route's answer:
- one statement, `booking_slot_probe()` (migration 0015), checks the credential (unknown,
  revoked or expired: no row) and reads, as the tenant behind row-level security, the
  location, the staleness threshold, the watermark, the booking policy's rules and the
  calendar version: the same reads the route makes, so there is still no stale window and
  a revoked token stops at once;
- the scope, the key's origin, the location list of the credential and the data's
  freshness are checked by the route's own functions;
- the answer's key is built by the route's own function (service.slot_answer_key), so
  only an answer the route stored for this exact calendar version can be found.

Anything else (no answer here, an unknown or refused credential, bad parameters, stale
data, an error of the probe) passes the request on to the route untouched, which answers
it, problems included, exactly as before. Only the rate limit is applied here, and only
when this path answers (a request is counted once). Counters:
`chairfill_slot_fast_path_total{outcome="answered"|"passed"}`.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl

import structlog
from prometheus_client import Counter
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth.dependencies import check_origin, check_scopes, presented_credential, rate_limit
from api.auth.principal import Principal
from api.auth.scopes import Scope as AuthScope
from api.auth.service import publishable_key_principal, token_principal
from api.booking import cache, repository, service
from api.booking.calendar import rules_of
from api.core.clock import utcnow
from api.core.encoding import json_response
from api.core.errors import Problem, problem_response
from api.core.raw_reads import RawReads
from api.core.security import hash_token
from api.practice import freshness

log = structlog.get_logger(__name__)

ROUTE_TEMPLATE = "/v1/locations/{location_id}/slots"
_PATH = re.compile(r"/v1/locations/([^/]+)/slots")
# The route's query parameters and their longest accepted value (router.py).
_LIMITS = {"appointment_type": 40, "start": 40, "end": 40, "provider": 40}
_REQUIRED = ("appointment_type", "start", "end")

OUTCOMES = Counter(
    "chairfill_slot_fast_path_total",
    "Slot requests answered before routing from this process's answers, or passed on",
    ["outcome"],
)
_ANSWERED = OUTCOMES.labels("answered")
_PASSED = OUTCOMES.labels("passed")


@dataclass(slots=True)
class SlotProbe:
    """The credential's caller and the state of a location of its tenant."""

    principal: Principal
    time_zone: str
    stale_data_threshold_minutes: int
    data_as_of: datetime | None
    version: str
    min_notice_minutes: int | None
    horizon_days: int | None
    step_minutes: int | None


async def probe(
    reads: RawReads, credential: str, location_id: str, now: datetime
) -> SlotProbe | None:
    """The caller and the location's slot state in one round trip; None when the
    credential is unknown, revoked or expired, or the location is not its tenant's."""
    is_key = credential.startswith("pk_")
    row = await repository.slot_probe(
        reads,
        access_token_hash=None if is_key else hash_token(credential),
        publishable_key=credential if is_key else None,
        location_id=location_id,
        now=now,
        calendar_entities=cache.CALENDAR_ENTITIES,
    )
    if row is None or row["timezone"] is None:
        return None
    if is_key:
        principal = publishable_key_principal(
            tenant_id=row["tenant_id"],
            key_id=row["credential_id"],
            location_ids=row["location_ids"],
            allowed_origins=row["allowed_origins"],
        )
    else:
        principal = token_principal(
            tenant_id=row["tenant_id"],
            client_id=row["client_id"],
            user_id=row["user_id"],
            token_id=row["credential_id"],
            scopes=row["scopes"],
            location_ids=row["location_ids"],
        )
    return SlotProbe(
        principal=principal,
        time_zone=row["timezone"],
        stale_data_threshold_minutes=row["stale_data_threshold_minutes"],
        data_as_of=row["data_as_of"],
        version=cache.version_of(row["calendar_version"], row["calendar_batches"]),
        min_notice_minutes=row["min_notice_minutes"],
        horizon_days=row["horizon_days"],
        step_minutes=row["step_minutes"],
    )


@functools.lru_cache(maxsize=4096)
def _query(query_string: bytes) -> Mapping[str, str] | None:
    """The query parameters as the route would validate them; None when the route should
    judge them (a missing, empty, repeated or too long parameter). Widgets send the same
    few queries over and over: each is parsed once (and handed out read-only)."""
    found: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in found:
            return None
        found[name] = value
    for name, longest in _LIMITS.items():
        given = found.get(name)
        if given is None:
            if name in _REQUIRED:
                return None
        elif not given or len(given) > longest:
            return None
    return MappingProxyType(found)


_WANTED_HEADERS = (b"authorization", b"origin", b"accept-encoding")


def _headers(scope: Scope) -> dict[bytes, str]:
    """The headers the fast path reads; of a repeated one, the first (as Starlette reads
    them for the route and the CORS middleware)."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED_HEADERS and name not in found:
            found[name] = value.decode("latin-1")
    return found


class SlotFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            matched = _PATH.fullmatch(scope["path"])
            if matched is not None:
                if await self._answer(scope, receive, send, matched.group(1)):
                    _ANSWERED.inc()
                    return
                _PASSED.inc()
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, location_id: str) -> bool:
        """Send the answer this process holds; False (nothing sent) to pass the request on."""
        state = getattr(scope["app"].state, "chairfill", None)
        local = service.LOCAL_ANSWERS
        query = _query(scope["query_string"])
        if state is None or query is None:
            return False
        headers = _headers(scope)
        credential = query.get("publishable_key") or presented_credential(
            headers.get(b"authorization"), None
        )
        if not credential:
            return False
        now = utcnow()
        try:
            found = await probe(state.raw_reads, credential, location_id, now)
        except Exception as exc:  # any doubt: the route answers (and reports) it
            log.warning("slot_fast_path_probe_failed", error=type(exc).__name__)
            return False
        if found is None:
            return False
        principal = found.principal
        try:
            if principal.kind == "publishable_key":
                check_origin(principal, headers.get(b"origin"))
            else:
                check_scopes(principal, [AuthScope.SCHEDULE_READ.value])
            if not principal.can_see_location(location_id):
                return False
            data_as_of = freshness.check_fresh(
                location_id, found.data_as_of, found.stale_data_threshold_minutes, now
            )
            start_at, end_at = service.slot_range(query["start"], query["end"], found.time_zone)
        except Problem:
            return False  # the route answers the same problem, from its own reads
        key = service.slot_answer_key(
            principal.tenant_id,
            location_id,
            found.version,
            appointment_type_id=query["appointment_type"],
            start_at=start_at,
            end_at=end_at,
            provider_id=query.get("provider"),
        )
        # An answer another request is computing now is waited for here too: when a busy
        # answer expires, the requests arriving during its computation would otherwise
        # all take the route's slow path at once.
        slots = local.get(key, now) or await service.IN_FLIGHT.shared(key)
        if slots is None:
            return False
        request = Request(scope, receive)
        request.state.principal = principal  # the access log names the caller
        scope["route_template"] = ROUTE_TEMPLATE
        try:
            await rate_limit(request, principal)
        except Problem as refused:
            await problem_response(request, refused)(scope, receive, send)
            return True
        rules = rules_of(found, state.settings.booking)
        earliest = service.answer_earliest(now, rules.min_notice_minutes)
        answer = local.render(key, slots, earliest, data_as_of, found.time_zone)
        response = json_response(answer.body, answer.gzipped(), headers.get(b"accept-encoding"))
        await response(scope, receive, send)
        ahead = service.REFRESH_AHEAD_SHARE * state.settings.booking.slot_cache_ttl_seconds
        if len(_BACKGROUND) < MAX_REFRESHES and local.claim_refresh(key, now, ahead):
            refresh = service.refresh_slot_answer(
                state.sessions,
                principal,
                service.BookingDeps.of(state),
                location_id=location_id,
                appointment_type_id=query["appointment_type"],
                start=query["start"],
                end=query["end"],
                provider_id=query.get("provider"),
            )
            _in_background(refresh)
        return True


# Refreshes running after their request was answered (held so they are not collected),
# at most this many at once: each costs a connection and ~35 ms of this process's CPU; an
# answer not refreshed ahead is simply computed when it has expired.
_BACKGROUND: set[asyncio.Task[None]] = set()
MAX_REFRESHES = 2


async def stop_refreshes() -> None:
    """Cancel the refreshes still running (the app is shutting down)."""
    for task in list(_BACKGROUND):
        task.cancel()
    await asyncio.gather(*_BACKGROUND, return_exceptions=True)


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _BACKGROUND.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[None]) -> None:
    _BACKGROUND.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # The old answer expires as it would have; the next request computes it.
        log.warning("slot_refresh_failed", error=repr(task.exception()))
