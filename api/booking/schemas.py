from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from api.booking.models import HOLD_STATUSES

Id = Field(min_length=1, max_length=40)


class SlotOut(BaseModel):
    start: dt.datetime = Field(description="Start, RFC 3339 with the location's UTC offset")
    end: dt.datetime = Field(description="End of the appointment (buffers excluded)")
    providers: list[str] = Field(description="Providers who can take it, in calendar order")
    operatories: list[str] = Field(description="Operatories free with at least one of them")


class AppointmentTypeOut(BaseModel):
    id: str
    name: str = Field(description="The practice's name for it, as in the PMS")
    duration_minutes: int


class AppointmentTypesOut(BaseModel):
    data: list[AppointmentTypeOut] = Field(
        description="Every self-bookable type of the location, by name (not paginated: a "
        "location offers a handful)"
    )
    time_zone: str = Field(description="The location's IANA time zone")


class SlotsOut(BaseModel):
    data: list[SlotOut]
    data_as_of: dt.datetime | None = Field(description="The location's PMS sync watermark")
    time_zone: str = Field(description="The location's IANA time zone")


class NextAvailableOut(BaseModel):
    data: SlotOut | None = Field(description="The first bookable slot; null when none")
    data_as_of: dt.datetime | None
    time_zone: str


class HoldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location_id: str = Id
    appointment_type_id: str = Id
    start: AwareDatetime = Field(description="A slot start (RFC 3339 with offset)")
    provider_id: str | None = Field(default=None, max_length=40)
    operatory_id: str | None = Field(default=None, max_length=40)


class HoldOut(BaseModel):
    id: str
    status: Literal[HOLD_STATUSES]  # type: ignore[valid-type]
    location_id: str
    appointment_type_id: str
    provider_id: str
    operatory_id: str
    start: dt.datetime
    end: dt.datetime
    hold_expires_at: dt.datetime = Field(description="When the hold lets the slot go")
    appointment_id: str | None = None
    patient_id: str | None = None
    task_id: str | None = Field(default=None, description="The front-desk task, if any")


class PatientDetails(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    birthdate: dt.date
    mobile: str | None = Field(default=None, max_length=40)
    email: str | None = Field(default=None, max_length=254)
    notes: str | None = Field(default=None, max_length=2000)
    sms_consent: bool = Field(
        default=False,
        description="The patient agrees to texts from the practice. Recorded on a chart "
        "this booking creates; an existing chart's consent stays as the PMS has it",
    )
    email_consent: bool = Field(
        default=False, description="The patient agrees to emails (same rule as sms_consent)"
    )
    invite: str | None = Field(
        default=None,
        max_length=40,
        description="The code of a one-tap booking link (`/v1/booking-invites/{code}`). The "
        "patient is still matched by name, birthdate and contact (the invited patient's "
        "number and address stand in when none is given); a booking by the invited patient "
        "is attributed to the cadence step that sent the link.",
    )

    @field_validator("first_name", "last_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class AppointmentOut(BaseModel):
    id: str
    location_id: str
    patient_id: str
    provider_id: str | None
    operatory_id: str | None
    appointment_type_id: str | None
    start: dt.datetime
    end: dt.datetime
    status: str
    source: str


class ConfirmOut(BaseModel):
    status: Literal["confirmed", "needs_review"] = Field(
        description="`needs_review`: the patient match was ambiguous; a front-desk task "
        "resolves it (HTTP 202) and the slot stays held meanwhile"
    )
    hold: HoldOut
    appointment: AppointmentOut | None = None
    patient_id: str | None = None
    patient_created: bool = False
    task_id: str | None = None


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime
    provider_id: str | None = Field(default=None, max_length=40)
    operatory_id: str | None = Field(default=None, max_length=40)


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class TypeBuffers(BaseModel):
    model_config = ConfigDict(extra="forbid")

    before: int = Field(default=0, ge=0, le=240)
    after: int = Field(default=0, ge=0, le=240)


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_notice_minutes: int | None = Field(default=None, ge=0, le=60 * 24 * 30)
    horizon_days: int | None = Field(default=None, ge=1, le=366)
    step_minutes: int | None = Field(
        default=None, ge=5, le=240, multiple_of=5, description="A multiple of 5 minutes"
    )
    type_buffers: dict[str, TypeBuffers] = Field(
        default_factory=dict, description="Buffers per appointment type id, in minutes"
    )


class PolicyOut(BaseModel):
    location_id: str
    min_notice_minutes: int
    horizon_days: int
    step_minutes: int
    type_buffers: dict[str, TypeBuffers]


class ReportItem(BaseModel):
    hold_id: str
    outcome: Literal["booked", "exception"]
    appointment_id: str | None
    task_id: str | None
    start: dt.datetime
    writeback_status: str | None = Field(description="pending, claimed, succeeded or failed")


class ReportOut(BaseModel):
    location_id: str
    date: dt.date
    time_zone: str
    online_bookings: int = Field(description="Holds confirmed into appointments that day")
    written_back: int = Field(description="Of those, written into the PMS")
    pending: int = Field(description="Of those, still waiting for the bridge")
    failed: int = Field(description="Of those, refused by the PMS")
    exceptions: int = Field(description="Bookings sent to the front desk that day")
    items: list[ReportItem]
