"""The write-back outbox, pull model: other domains enqueue changes for the PMS in their
own transaction; the location's bridge claims them with a lease, writes them into the PMS
and acknowledges each with the outcome.

    await writeback.enqueue_writeback(session, tenant_id=..., location_id=...,
                                      kind="appointment_create", payload={...})

Leases: a claimed item whose lease ran out is open again (another bridge may claim it).
A late ack from the old holder is still accepted while nobody re-claimed the item; once
re-claimed, only the new lease may ack (409 otherwise). Acks are idempotent: the same
outcome twice answers the item unchanged."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.principal import Principal
from api.core.errors import NotFound, ValidationProblem
from api.core.ids import new_id
from api.core.pagination import PageParams, page_of
from api.events import record_event
from api.practice import freshness, links
from api.practice import writeback_repository as repository
from api.practice.models import Writeback
from api.practice.models_sync import WRITEBACK_KINDS
from api.practice.problems import LeaseConflict
from api.practice.schemas import (
    AckIn,
    ClaimedWriteback,
    ClaimIn,
    ClaimOut,
    WritebackOut,
)

log = structlog.get_logger(__name__)


def writeback_out(item: Writeback, now: datetime) -> WritebackOut:
    out = WritebackOut.model_validate(item)
    if item.status == "claimed" and item.lease_expires_at and item.lease_expires_at <= now:
        out.status = "pending"
    return out


async def enqueue_writeback(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    kind: str,
    payload: dict[str, Any],
) -> Writeback:
    """Record a change for the location's PMS in the caller's transaction."""
    if kind not in WRITEBACK_KINDS:
        raise ValueError(f"unknown write-back kind {kind!r}; one of {WRITEBACK_KINDS}")
    item = Writeback(
        tenant_id=tenant_id,
        id=new_id("writeback"),
        location_id=location_id,
        kind=kind,
        payload=payload,
        status="pending",
        attempts=0,
    )
    session.add(item)
    await session.flush()
    return item


async def get_writeback(
    session: AsyncSession, principal: Principal, writeback_id: str, now: datetime
) -> WritebackOut:
    item = await repository.get(session, principal.tenant_id, principal.location_ids, writeback_id)
    if item is None:
        raise NotFound(f"There is no write-back {writeback_id}.")
    return writeback_out(item, now)


async def list_writebacks(
    session: AsyncSession,
    principal: Principal,
    location_id: str,
    status: str | None,
    page: PageParams,
    now: datetime,
) -> tuple[list[WritebackOut], str | None]:
    await freshness.require_location(
        session, principal.tenant_id, location_id, principal.location_ids
    )
    rows = await repository.list_for_location(
        session, principal.tenant_id, location_id, status, now, page
    )
    items, cursor = page_of(rows, ["id"], page)
    return [writeback_out(w, now) for w in items], cursor


async def claim(
    session: AsyncSession, principal: Principal, request: ClaimIn, now: datetime
) -> ClaimOut:
    await freshness.require_location(
        session, principal.tenant_id, request.location_id, principal.location_ids
    )
    lease_id = f"lease_{secrets.token_urlsafe(16)}"
    items = await repository.claim(
        session,
        principal.tenant_id,
        request.location_id,
        limit=request.limit,
        lease_id=lease_id,
        lease_expires_at=now + timedelta(seconds=request.lease_seconds),
        claimed_by=principal.id,
        now=now,
    )
    return ClaimOut(
        lease_id=lease_id if items else None,
        data=[
            ClaimedWriteback.model_validate(w).model_copy(update={"lease_id": lease_id})
            for w in items
        ],
    )


def _check_ack(ack: AckIn) -> None:
    if ack.outcome == "failed" and not (ack.reason and ack.reason.strip()):
        raise ValidationProblem(
            "A failed write-back needs the reason (what the PMS said).",
            errors=[{"field": "reason", "message": "required when outcome is failed"}],
        )


async def acknowledge(
    session: AsyncSession, principal: Principal, writeback_id: str, ack: AckIn, now: datetime
) -> WritebackOut:
    _check_ack(ack)
    item = await repository.get(
        session, principal.tenant_id, principal.location_ids, writeback_id, for_update=True
    )
    if item is None:
        raise NotFound(f"There is no write-back {writeback_id}.")
    if item.status in ("succeeded", "failed"):
        if item.status == ack.outcome and item.lease_id == ack.lease_id:
            return writeback_out(item, now)  # a retried ack: harmless
        raise LeaseConflict(
            f"Write-back {writeback_id} was already acknowledged as {item.status}.",
            extra={"writeback_status": item.status},
        )
    if item.status != "claimed" or item.lease_id != ack.lease_id:
        raise LeaseConflict(
            f"Write-back {writeback_id} is not held by lease {ack.lease_id}: "
            + (
                "it is not claimed."
                if item.status != "claimed"
                else "its lease ran out and another claim holds it now. Do not retry it; "
                "its holder will report the outcome."
            ),
            extra={"writeback_status": writeback_out(item, now).status},
        )
    item.status = ack.outcome
    item.completed_at = now
    item.lease_expires_at = None
    if ack.outcome == "succeeded":
        item.pms_id = ack.pms_id
        item.failure_reason = None
    else:
        item.failure_reason = ack.reason
    await session.flush()
    # Our appointment (and new chart) take the PMS's ids in the same transaction.
    await links.link_created_rows(session, item, ack.patient_pms_id, now)
    await _record_outcome(session, item)
    return writeback_out(item, now)


async def _record_outcome(session: AsyncSession, item: Writeback) -> None:
    event_type = f"writeback.{item.status}"
    await record_event(
        session,
        tenant_id=item.tenant_id,
        type=event_type,
        location_id=item.location_id,
        occurred_at=item.completed_at,
        data={
            "writeback_id": item.id,
            "location_id": item.location_id,
            "kind": item.kind,
            "pms_id": item.pms_id,
            "failure_reason": item.failure_reason,
            "attempts": item.attempts,
        },
    )
