"""What a bridge sends for each entity: one row model per entity, references to other
mirrored rows given as the PMS's external ids (`patient_external_id`, ...).

Rows are strict (unknown fields are refused, so a typo cannot silently drop data); empty
strings for optional text count as absent, as PMS exports often write them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from api.practice.contact import normalize_contact, normalize_email, normalize_phone


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


ExternalId = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$"
    ),
]
OptionalExternalId = ExternalId | None


NO_NUL = r"^[^\x00]+$"


def _text(max_length: int) -> Any:
    # PostgreSQL text cannot hold NUL: refused here, per row, not by the COPY (a 500).
    return Annotated[
        str,
        StringConstraints(
            strip_whitespace=True, min_length=1, max_length=max_length, pattern=NO_NUL
        ),
    ]


def _optional_text(max_length: int) -> Any:
    return _text(max_length) | None


Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2)]


def _region(info: ValidationInfo) -> str:
    return (info.context or {}).get("region") or "US"


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    external_id: ExternalId = Field(description="The PMS's own id of this row.")

    @model_validator(mode="before")
    @classmethod
    def _blanks_are_absent(cls, data: Any) -> Any:
        # One pass per row, in C (cheaper than a validator per optional field).
        if isinstance(data, dict) and "" in data.values():
            return {k: _blank_to_none(v) for k, v in data.items()}
        return data


class PatientRow(Row):
    first_name: _text(100)  # type: ignore[valid-type]
    last_name: _text(100)  # type: ignore[valid-type]
    preferred_name: _optional_text(100) = None  # type: ignore[valid-type]
    birthdate: dt.date | None = None
    status: Literal["active", "inactive", "archived", "deceased"] = "active"
    email: _optional_text(254) = None  # type: ignore[valid-type]
    mobile: _optional_text(40) = Field(  # type: ignore[valid-type]
        default=None, description="E.164, or national format read in the location's country"
    )
    communication_preference: Literal["sms", "email", "phone", "none"] = "sms"
    sms_consent: bool = False
    email_consent: bool = False
    household_id: _optional_text(64) = None  # type: ignore[valid-type]
    guarantor_external_id: OptionalExternalId = None
    primary_provider_external_id: OptionalExternalId = None
    first_visit_date: dt.date | None = None
    last_visit_date: dt.date | None = None

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else normalize_email(value)

    @field_validator("mobile")
    @classmethod
    def _mobile(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else normalize_phone(value, _region(info))

    @field_validator("birthdate")
    @classmethod
    def _birthdate(cls, value: dt.date | None) -> dt.date | None:
        if value is not None and value.year < 1880:
            raise ValueError("birthdate before 1880")
        return value


class ProviderRow(Row):
    kind: Literal["dentist", "hygienist"]
    name: _text(200)  # type: ignore[valid-type]
    active: bool = True


class OperatoryRow(Row):
    name: _text(200)  # type: ignore[valid-type]
    active: bool = True


class AppointmentTypeRow(Row):
    name: _text(200)  # type: ignore[valid-type]
    duration_minutes: int = Field(ge=5, le=720)
    self_bookable: bool = False
    provider_external_ids: list[ExternalId] = Field(default_factory=list, max_length=200)
    operatory_external_ids: list[ExternalId] = Field(default_factory=list, max_length=200)


class ScheduleRow(Row):
    kind: Literal["weekly", "exception", "block"]
    provider_external_id: OptionalExternalId = None
    operatory_external_id: OptionalExternalId = None
    weekday: int | None = Field(default=None, ge=0, le=6, description="0 = Monday")
    date: dt.date | None = None
    is_off: bool = False
    start_time: dt.time | None = None
    end_time: dt.time | None = None
    start_at: AwareDatetime | None = None
    end_at: AwareDatetime | None = None
    reason: _optional_text(200) = None  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _shape(self) -> ScheduleRow:
        def hours() -> None:
            if self.start_time is None or self.end_time is None:
                raise ValueError(f"a {self.kind} entry needs start_time and end_time")
            if self.start_time >= self.end_time:
                raise ValueError("start_time must be before end_time")

        if self.kind in ("weekly", "exception") and self.provider_external_id is None:
            raise ValueError(f"a {self.kind} entry needs provider_external_id")
        if self.kind == "weekly":
            if self.weekday is None:
                raise ValueError("a weekly entry needs weekday")
            hours()
        elif self.kind == "exception":
            if self.date is None:
                raise ValueError("an exception needs date")
            if not self.is_off:
                hours()
        else:
            if self.start_at is None or self.end_at is None:
                raise ValueError("a block needs start_at and end_at")
            if self.start_at >= self.end_at:
                raise ValueError("start_at must be before end_at")
            if self.provider_external_id is None and self.operatory_external_id is None:
                raise ValueError("a block needs provider_external_id or operatory_external_id")
        return self


class AppointmentRow(Row):
    patient_external_id: ExternalId
    provider_external_id: OptionalExternalId = None
    operatory_external_id: OptionalExternalId = None
    appointment_type_external_id: OptionalExternalId = None
    start_at: AwareDatetime
    end_at: AwareDatetime
    status: Literal["scheduled", "confirmed", "completed", "cancelled", "broken", "no_show"]
    is_tentative: bool = False
    source: Literal["pms", "online"] = "pms"

    @model_validator(mode="after")
    def _length(self) -> AppointmentRow:
        if self.end_at <= self.start_at:
            raise ValueError("end_at must be after start_at")
        return self


class RecallRow(Row):
    patient_external_id: ExternalId
    recall_type: _text(32)  # type: ignore[valid-type]
    interval_months: int | None = Field(default=None, ge=1, le=120)
    due_date: dt.date | None = None
    disabled: bool = False


class TreatmentPlanRow(Row):
    patient_external_id: ExternalId
    name: _text(200)  # type: ignore[valid-type]
    status: Literal["proposed", "accepted", "rejected", "completed", "inactive"]
    presented_date: dt.date | None = None


class ProcedureRow(Row):
    patient_external_id: ExternalId
    provider_external_id: OptionalExternalId = None
    treatment_plan_external_id: OptionalExternalId = None
    code: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9.\-]{1,16}$")
    ]
    description: _optional_text(300) = None  # type: ignore[valid-type]
    tooth: _optional_text(8) = None  # type: ignore[valid-type]
    surface: _optional_text(16) = None  # type: ignore[valid-type]
    fee: Decimal = Field(default=Decimal("0"), ge=0, max_digits=10, decimal_places=2)
    status: Literal["proposed", "accepted", "scheduled", "completed"]
    planned_date: dt.date | None = None
    completed_date: dt.date | None = None


class LedgerRow(Row):
    guarantor_external_id: ExternalId
    balance: Money
    in_collections: bool = False
    aging_0_30: Money = Decimal("0")
    aging_31_60: Money = Decimal("0")
    aging_61_90: Money = Decimal("0")
    aging_over_90: Money = Decimal("0")


class CommunicationRow(Row):
    patient_external_id: ExternalId
    channel: Literal["sms", "email", "phone", "letter"]
    direction: Literal["outbound", "inbound"]
    contacted_at: AwareDatetime
    source: _text(32) = "pms"  # type: ignore[valid-type]
    kind: _optional_text(32) = None  # type: ignore[valid-type]


class OptOutRow(Row):
    patient_external_id: OptionalExternalId = None
    contact_value: _optional_text(254) = None  # type: ignore[valid-type]
    channel: Literal["sms", "email", "phone", "letter", "all"]
    opted_out_at: AwareDatetime
    source: _text(32) = "pms"  # type: ignore[valid-type]

    @field_validator("contact_value")
    @classmethod
    def _contact(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else normalize_contact(value, _region(info))

    @model_validator(mode="after")
    def _someone(self) -> OptOutRow:
        if self.patient_external_id is None and self.contact_value is None:
            raise ValueError("an opt-out needs patient_external_id or contact_value")
        return self
