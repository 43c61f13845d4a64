"""Request and response bodies of the practice mirror, the sync API and write-backs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SkipValidation

DATA_AS_OF = (
    "The PMS time up to which this location's mirror is complete (the bridge's sync "
    "watermark); null when it was never synced."
)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- the mirror ----------------------------------------------------------------------------


class RecallOut(_Out):
    id: str
    external_id: str
    recall_type: str
    interval_months: int | None
    due_date: dt.date | None
    disabled: bool


class ProcedureOut(_Out):
    id: str
    external_id: str
    code: str
    description: str | None
    tooth: str | None
    surface: str | None
    fee: Decimal
    status: Literal["proposed", "accepted", "scheduled", "completed"]
    planned_date: dt.date | None
    treatment_plan_id: str | None
    completed_date: dt.date | None


class TreatmentPlanOut(_Out):
    id: str
    external_id: str
    name: str
    status: str
    presented_date: dt.date | None


class OpenTreatmentOut(BaseModel):
    plans: list[TreatmentPlanOut]
    procedures: list[ProcedureOut] = Field(
        description="Procedures proposed, accepted or scheduled but not completed"
    )
    total_fee: Decimal


class BalanceOut(_Out):
    guarantor_id: str
    balance: Decimal
    in_collections: bool
    aging_0_30: Decimal
    aging_31_60: Decimal
    aging_61_90: Decimal
    aging_over_90: Decimal


class PatientOut(_Out):
    id: str
    location_id: str
    external_id: str = Field(description="The PMS's id of the patient")
    first_name: str
    last_name: str
    preferred_name: str | None
    birthdate: dt.date | None
    status: Literal["active", "inactive", "archived", "deceased"]
    email: str | None
    mobile: str | None = Field(description="E.164")
    communication_preference: Literal["sms", "email", "phone", "none"]
    sms_consent: bool
    email_consent: bool
    household_id: str | None
    guarantor_id: str | None
    primary_provider_id: str | None
    first_visit_date: dt.date | None
    last_visit_date: dt.date | None
    updated_at: dt.datetime
    data_as_of: dt.datetime | None = Field(default=None, description=DATA_AS_OF)


class PatientDetailOut(PatientOut):
    recalls: list[RecallOut]
    open_treatment: OpenTreatmentOut
    balance: BalanceOut | None = Field(description="The account of the patient's guarantor")


class AppointmentOut(_Out):
    id: str
    location_id: str
    external_id: str
    patient_id: str
    provider_id: str | None
    operatory_id: str | None
    appointment_type_id: str | None
    start_at: dt.datetime
    end_at: dt.datetime
    status: Literal["scheduled", "confirmed", "completed", "cancelled", "broken", "no_show"]
    is_tentative: bool
    source: Literal["pms", "online"]
    updated_at: dt.datetime
    data_as_of: dt.datetime | None = Field(default=None, description=DATA_AS_OF)


class ProviderOut(_Out):
    id: str
    location_id: str
    external_id: str
    kind: Literal["dentist", "hygienist"]
    name: str
    active: bool
    data_as_of: dt.datetime | None = Field(default=None, description=DATA_AS_OF)


class OperatoryOut(_Out):
    id: str
    location_id: str
    external_id: str
    name: str
    active: bool
    data_as_of: dt.datetime | None = Field(default=None, description=DATA_AS_OF)


class AppointmentTypeOut(_Out):
    id: str
    location_id: str
    external_id: str
    name: str
    duration_minutes: int
    self_bookable: bool
    provider_ids: list[str] = Field(description="Providers who may do it; empty means any")
    operatory_ids: list[str] = Field(description="Operatories it may use; empty means any")
    data_as_of: dt.datetime | None = Field(default=None, description=DATA_AS_OF)


# --- sync ----------------------------------------------------------------------------------


class SyncBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Each row is validated by its entity's row model (rows[17].birthdate); checking here
    # only that it is an object would copy every row first (~1.3 µs a row). A row that is
    # not an object is reported there, by its index, like any other bad row.
    rows: list[Annotated[dict[str, Any], SkipValidation]] = Field(
        default_factory=list,
        description="Up to 10,000 rows of the entity, keyed by `external_id`; references "
        "to other rows as external ids (`patient_external_id`, ...).",
    )
    deletes: list[Any] = Field(
        default_factory=list, description="External ids deleted in the PMS (tombstoned)."
    )
    watermark: AwareDatetime | None = Field(
        default=None,
        description="The PMS time up to which the pushed data is complete; advances the "
        "location's `data_as_of` (an older one is ignored).",
    )


class WatermarkOutcome(BaseModel):
    received: dt.datetime | None
    applied: bool
    detail: str
    data_as_of: dt.datetime | None = None


class SyncBatchResult(BaseModel):
    entity: str
    location_id: str
    received: int
    created: int
    updated: int
    unchanged: int = Field(description="Rows sent again without a change (not rewritten)")
    deleted: int = Field(description="Rows tombstoned by this batch")
    deletes_ignored: int = Field(description="Deletes of unknown or already deleted rows")
    watermark: WatermarkOutcome
    data_as_of: dt.datetime | None = Field(description=DATA_AS_OF)


class EntitySyncOut(BaseModel):
    batches: int = 0
    received: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    last_sync_at: dt.datetime | None = None


class SyncStatusOut(BaseModel):
    location_id: str
    data_as_of: dt.datetime | None = Field(description=DATA_AS_OF)
    last_sync_at: dt.datetime | None = Field(description="When the bridge last pushed a batch")
    stale_data_threshold_minutes: int
    is_stale: bool = Field(description="True when work needing fresh PMS data would refuse")
    entities: dict[str, EntitySyncOut] = Field(description="Running totals per entity")


# --- write-backs ---------------------------------------------------------------------------

WritebackKind = Literal[
    "chart_note", "appointment_create", "appointment_update", "appointment_cancel"
]
WritebackStatus = Literal["pending", "claimed", "succeeded", "failed"]


class WritebackOut(_Out):
    id: str
    location_id: str
    kind: WritebackKind
    payload: dict[str, Any]
    status: WritebackStatus = Field(
        description="`claimed` with an expired lease is reported as `pending`"
    )
    lease_expires_at: dt.datetime | None
    attempts: int
    pms_id: str | None
    failure_reason: str | None
    created_at: dt.datetime
    completed_at: dt.datetime | None


class ClaimIn(BaseModel):
    location_id: str
    limit: int = Field(default=20, ge=1, le=500)
    lease_seconds: int = Field(default=300, ge=5, le=3600)


class ClaimedWriteback(WritebackOut):
    lease_id: str = Field(description="Present it when acknowledging the item")


class ClaimOut(BaseModel):
    lease_id: str | None = Field(description="The lease of every item of this claim")
    data: list[ClaimedWriteback]


class AckIn(BaseModel):
    lease_id: str = Field(description="The lease the claim returned")
    outcome: Literal["succeeded", "failed"]
    pms_id: str | None = Field(default=None, max_length=64)
    patient_pms_id: str | None = Field(
        default=None,
        max_length=64,
        description="For an `appointment_create` that created the chart (`patient.new`): "
        "the new chart's PMS id, so its next sync updates that chart instead of adding one",
    )
    reason: str | None = Field(default=None, max_length=2000)
