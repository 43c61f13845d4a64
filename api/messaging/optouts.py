"""Opt-outs we record ourselves: a STOP by SMS (source `sms_reply`) and a one-click email
unsubscribe (source `email_unsubscribe`). They are rows of the mirror's opt-outs table, so
every send (ours, and the segments' suppression) sees them at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.core.ids import new_id
from api.events import record_event
from api.messaging import repository
from api.practice.models import OptOut, Patient

SMS_REPLY = "sms_reply"
EMAIL_UNSUBSCRIBE = "email_unsubscribe"


async def opt_out(
    session: AsyncSession,
    *,
    tenant_id: str,
    channel: str,
    source: str,
    address: str,
    patients: Sequence[Patient],
    fallback_location_id: str,
    now: datetime,
) -> bool:
    """Opt `address` (and the patients it belongs to) out of `channel`. False when it was
    already opted out by us, so nothing is written and nothing is announced twice."""
    existing = await repository.own_opt_outs(
        session, tenant_id, channel, source, address, [p.id for p in patients]
    )
    covered = {o.patient_id for o in existing}
    targets: list[tuple[str | None, str]] = [
        (p.id, p.location_id) for p in patients if p.id not in covered
    ]
    if not patients and not existing:
        targets.append((None, fallback_location_id))
    for patient_id, location_id in targets:
        session.add(
            OptOut(
                tenant_id=tenant_id,
                id=new_id("opt_out"),
                location_id=location_id,
                external_id=f"chairfill:{new_id('opt_out')}",
                patient_id=patient_id,
                contact_value=address,
                channel=channel,
                opted_out_at=now,
                source=source,
                updated_at=now,
            )
        )
    await session.flush()
    for patient_id, location_id in targets:
        await record_event(
            session,
            tenant_id=tenant_id,
            type="message.opted_out",
            location_id=location_id,
            occurred_at=now,
            data={
                "location_id": location_id,
                "patient_id": patient_id,
                "channel": channel,
                "contact_value": address,
                "source": source,
            },
        )
    return bool(targets)


async def opt_back_in(
    session: AsyncSession,
    *,
    tenant_id: str,
    channel: str,
    source: str,
    address: str,
    patients: Sequence[Patient],
    now: datetime,
) -> int:
    """Lift the opt-outs we recorded (START): the PMS's own opt-outs stay, they are the
    practice's record. Returns how many were lifted."""
    lifted = await repository.own_opt_outs(
        session, tenant_id, channel, source, address, [p.id for p in patients]
    )
    for row in lifted:
        row.deleted_at = now
        row.updated_at = now
    await session.flush()
    return len(lifted)


async def unsubscribe_patient(
    session: AsyncSession, tenant_id: str, patient_id: str
) -> Patient | None:
    """The patient an unsubscribe link names (None: the link is spent)."""
    return await repository.get_patient(session, tenant_id, patient_id)


async def unsubscribe_email(
    session: AsyncSession, tenant_id: str, patient_id: str, now: datetime
) -> Patient | None:
    """One-click unsubscribe: the patient (and their address) get no more email. Repeats
    are harmless. None when the patient is unknown (the link is then simply spent)."""
    patient = await unsubscribe_patient(session, tenant_id, patient_id)
    if patient is None:
        return None
    await opt_out(
        session,
        tenant_id=tenant_id,
        channel="email",
        source=EMAIL_UNSUBSCRIBE,
        address=patient.email or f"patient:{patient.id}",
        patients=[patient],
        fallback_location_id=patient.location_id,
        now=now,
    )
    return patient
