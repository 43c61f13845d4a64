"""One-tap booking links: a cadence message's `{{booking.link}}` becomes a short link
(`/b/{code}`) naming one patient, one location and the step that sent it. It opens the
booking widget with the patient's name filled in and the cadence's appointment type chosen;
the patient confirms with their birthdate, so a forwarded link books no one else. A booking
made through it is attributed to the cadence and step.

The code is random (60 bits), expires (INVITE_TTL) and is looked up across tenants by the
public link, like an unsubscribe token."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.cadences.models import BookingInvite, Cadence, Enrollment
from api.core.errors import FieldError, ValidationProblem
from api.core.settings import Settings
from api.messaging.unsubscribe import public_base
from api.practice.models import Patient

# Long enough to outlive a 14-day cadence's last message by a week.
INVITE_TTL = dt.timedelta(days=21)
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no look-alikes (l/1, o/0, i)


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(12))


def invite_link(settings: Settings, code: str) -> str:
    return f"{public_base(settings)}/b/{code}"


async def create_invite(
    session: AsyncSession, cadence: Cadence, enrollment: Enrollment, position: int, now: dt.datetime
) -> BookingInvite:
    invite = BookingInvite(
        tenant_id=enrollment.tenant_id,
        code=new_code(),
        location_id=enrollment.location_id,
        patient_id=enrollment.patient_id,
        enrollment_id=enrollment.id,
        position=position,
        appointment_type_id=cadence.appointment_type_id,
        expires_at=now + INVITE_TTL,
    )
    session.add(invite)
    await session.flush()
    return invite


async def find_invite(session: AsyncSession, code: str, now: dt.datetime) -> BookingInvite | None:
    """System look-up (the public link carries no tenant): a live invite, or None."""
    if not code.isascii() or not 8 <= len(code) <= 16:
        return None
    stmt = select(BookingInvite).where(BookingInvite.code == code.lower())
    invite = (await session.execute(stmt)).scalar_one_or_none()
    if invite is None or invite.expires_at <= now:
        return None
    return invite


def _refused(message: str) -> ValidationProblem:
    return ValidationProblem(
        f"The booking link cannot be used: {message}.",
        errors=[FieldError(field="invite", message=message)],
    )


async def invite_for_booking(
    session: AsyncSession, tenant_id: str, location_id: str, code: str, now: dt.datetime
) -> BookingInvite:
    """The invite a confirmation names, checked against the hold's tenant and location."""
    stmt = select(BookingInvite).where(
        BookingInvite.tenant_id == tenant_id, BookingInvite.code == code.lower()
    )
    invite = (await session.execute(stmt)).scalar_one_or_none()
    if invite is None:
        raise _refused("unknown invite")
    if invite.expires_at <= now:
        raise _refused("the invite expired")
    if invite.location_id != location_id:
        raise _refused("the invite is for another location")
    return invite


async def invited_contact(
    session: AsyncSession, invite: BookingInvite
) -> tuple[str | None, str | None]:
    """(mobile, email) of the invited patient's chart."""
    stmt = select(Patient.mobile, Patient.email).where(
        Patient.tenant_id == invite.tenant_id, Patient.id == invite.patient_id
    )
    row = (await session.execute(stmt)).one_or_none()
    return (None, None) if row is None else (row[0], row[1])


async def attribute_booking(
    session: AsyncSession,
    invite: BookingInvite,
    patient_id: str,
    appointment_id: str,
    now: dt.datetime,
) -> bool:
    """Credit the cadence step when the booking is the invited patient's (the confirm's
    own patient match decides who booked; a different person gets no credit)."""
    if patient_id != invite.patient_id:
        return False
    invite.used_at, invite.appointment_id = now, appointment_id
    stmt = select(Enrollment).where(
        Enrollment.tenant_id == invite.tenant_id, Enrollment.id == invite.enrollment_id
    )
    enrollment = (await session.execute(stmt)).scalar_one_or_none()
    if enrollment is not None and enrollment.booked_via_position is None:
        enrollment.booked_via_position = invite.position
    await session.flush()
    return True
