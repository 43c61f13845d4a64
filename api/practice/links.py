"""Rows we created before the PMS knew them (online bookings: `external_id` is
`online:<our id>`) take the PMS's id once the bridge acknowledges their write-back, so
the next sync of the same appointment or chart updates our row instead of importing it
a second time.

If the bridge synced the new row before acknowledging it (the import raced the ack), the
imported appointment is retired (tombstoned, its PMS id freed) and ours takes its place: our
row is the one holds, events and calendar claims point at. A chart imported that way is
left alone (other rows may already point at it) and logged for the front desk.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.repository import scoped
from api.practice import ingest_sql
from api.practice.models import Appointment, Patient, Writeback

log = structlog.get_logger(__name__)

PLACEHOLDER_PREFIX = "online:"


async def _row(
    session: AsyncSession, model: Any, tenant_id: str, location_id: str, **where: str
) -> Any | None:
    stmt = scoped(model, tenant_id).where(model.location_id == location_id)
    for column, value in where.items():
        stmt = stmt.where(getattr(model, column) == value)
    return (await session.execute(stmt.with_for_update())).scalar_one_or_none()


async def _link(
    session: AsyncSession,
    model: type[Appointment] | type[Patient],
    item: Writeback,
    our_id: str,
    pms_id: str,
    now: datetime,
) -> bool:
    ours = await _row(session, model, item.tenant_id, item.location_id, id=our_id)
    if ours is None or ours.external_id == pms_id:
        return False
    if not ours.external_id.startswith(PLACEHOLDER_PREFIX):
        # Already linked to another PMS row: the PMS's own sync decides, not this ack.
        log.warning("writeback_link_refused", table=model.__tablename__, id=our_id)
        return False
    imported = await _row(session, model, item.tenant_id, item.location_id, external_id=pms_id)
    if imported is not None:
        if model is not Appointment:
            log.warning(
                "writeback_link_duplicate_chart", id=our_id, imported_id=imported.id, pms_id=pms_id
            )
            return False
        imported.external_id = f"merged:{imported.id}"
        imported.deleted_at = now
        imported.updated_at = now
        await session.flush()
    ours.external_id = pms_id
    ours.updated_at = now
    await session.flush()
    return True


async def link_created_rows(
    session: AsyncSession, item: Writeback, patient_pms_id: str | None, now: datetime
) -> None:
    """After a succeeded `appointment_create` ack: our appointment (and the chart it
    created, when the bridge sent that chart's PMS id) take their PMS ids."""
    if item.kind != "appointment_create" or item.status != "succeeded" or not item.pms_id:
        return
    payload: dict[str, Any] = item.payload or {}
    appointment_id = payload.get("appointment_id")
    patient: dict[str, Any] = payload.get("patient") or {}
    link_patient = bool(
        patient_pms_id and patient.get("new") and isinstance(patient.get("id"), str)
    )
    # A sync batch decides which of its rows are new by external id under its entity's
    # lock and inserts those plainly (api/practice/ingest_sql.py): renaming a row to a PMS
    # id takes the same lock, in the order batches take them (patients before
    # appointments), so the rename lands wholly before or after a batch of that entity.
    if link_patient:
        await ingest_sql.lock_entity(session, item.tenant_id, item.location_id, "patients")
    if isinstance(appointment_id, str):
        await ingest_sql.lock_entity(session, item.tenant_id, item.location_id, "appointments")
        await _link(session, Appointment, item, appointment_id, item.pms_id, now)
    if link_patient and patient_pms_id is not None:
        await _link(session, Patient, item, patient["id"], patient_pms_id, now)
