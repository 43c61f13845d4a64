"""Ending enrollments the moment a patient books, replies, opts out, is seen for their
recall or pays their balance. One set-based UPDATE per reason, recorded with its reason
and a `cadence.exited` event.

The dispatcher runs this for the whole tenant right before sending anything, in the same
transaction, so no step goes out after an exit condition became true in the mirror; the
minute cron runs it for tenants with nothing due, so exits are recorded within a minute
even in the middle of a long delay. Code that sees the cause happen (a booking confirmed,
a reply received) calls it for that patient at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.cadences import repository
from api.events import record_event

# Checked in this order: a patient who booked and replied exited because they booked.
EXIT_ORDER = ("booked", "replied", "opted_out", "recall_fulfilled", "balance_paid")


async def record_exits(
    session: AsyncSession, tenant_id: str, rows: Sequence[Any], now: dt.datetime
) -> None:
    for row in rows:
        await record_event(
            session,
            tenant_id=tenant_id,
            type="cadence.exited",
            location_id=row.location_id,
            data={
                "enrollment_id": row.id,
                "cadence_id": row.cadence_id,
                "patient_id": row.patient_id,
                "location_id": row.location_id,
                "reason": row.exit_reason,
                "appointment_id": row.booked_appointment_id,
                "exited_at": now,
            },
        )


async def apply_exits(
    session: AsyncSession,
    tenant_id: str,
    now: dt.datetime,
    patient_ids: Sequence[str] | None = None,
) -> int:
    """End every active enrollment (of these patients, or all) that meets an exit."""
    ended = 0
    for reason in EXIT_ORDER:
        rows = await repository.exit_where(session, tenant_id, reason, now, patient_ids)
        await record_exits(session, tenant_id, rows, now)
        ended += len(rows)
    return ended
