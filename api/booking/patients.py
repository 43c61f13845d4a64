"""Patients of online bookings: contact details in their canonical form, a new chart
when nobody matches, and the PMS write-back payload of a confirmed booking."""

from __future__ import annotations

from api.booking.models import Hold
from api.booking.schemas import PatientDetails
from api.core.errors import ValidationProblem
from api.core.ids import new_id
from api.practice.contact import normalize_email, normalize_phone
from api.practice.models import Appointment, Patient


def contact_of(details: PatientDetails, region: str) -> tuple[str | None, str | None]:
    try:
        mobile = normalize_phone(details.mobile, region) if details.mobile else None
    except ValueError as exc:
        raise ValidationProblem(
            f"mobile: {exc}", errors=[{"field": "mobile", "message": str(exc)}]
        ) from None
    try:
        email = normalize_email(details.email) if details.email else None
    except ValueError as exc:
        raise ValidationProblem(
            f"email: {exc}", errors=[{"field": "email", "message": str(exc)}]
        ) from None
    # With a one-tap invite the invited chart's contact stands in (api/booking/holds.py).
    if mobile is None and email is None and not details.invite:
        raise ValidationProblem(
            "Send the patient's mobile number or email address.",
            errors=[{"field": "mobile", "message": "mobile or email is required"}],
        )
    return mobile, email


def new_patient(
    hold: Hold, details: PatientDetails, mobile: str | None, email: str | None
) -> Patient:
    patient_id = new_id("patient")
    return Patient(
        tenant_id=hold.tenant_id,
        id=patient_id,
        location_id=hold.location_id,
        # No PMS id yet: the bridge creates the chart with the appointment write-back.
        external_id=f"online:{patient_id}",
        first_name=details.first_name,
        last_name=details.last_name,
        birthdate=details.birthdate,
        status="active",
        mobile=mobile,
        email=email,
        communication_preference="sms" if mobile else "email",
        # What the patient ticked in the booking form, for the address they gave.
        sms_consent=details.sms_consent and mobile is not None,
        email_consent=details.email_consent and email is not None,
    )


def create_payload(
    appointment: Appointment, patient: Patient, created: bool, notes: str | None, hold: Hold
) -> dict[str, object]:
    return {
        "appointment_id": appointment.id,
        "hold_id": hold.id,
        "source": "online",
        "status": "scheduled",
        "start_at": appointment.start_at.isoformat(),
        "end_at": appointment.end_at.isoformat(),
        "provider_id": appointment.provider_id,
        "operatory_id": appointment.operatory_id,
        "appointment_type_id": appointment.appointment_type_id,
        "notes": notes,
        "patient": {
            "id": patient.id,
            "external_id": None if created else patient.external_id,
            "new": created,
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "birthdate": patient.birthdate.isoformat() if patient.birthdate else None,
            "mobile": patient.mobile,
            "email": patient.email,
            "sms_consent": patient.sms_consent,
            "email_consent": patient.email_consent,
        },
    }
