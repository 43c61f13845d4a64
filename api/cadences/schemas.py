"""Request and response bodies of the cadences API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.core.wall_clock import LocalTime
from api.messaging.schemas import Content, IdText

StepChannel = Literal["sms", "email", "call"]
CadenceStatus = Literal["active", "paused"]
EnrollmentStatus = Literal["active", "completed", "exited"]
ExitReason = Literal[
    "booked", "replied", "opted_out", "recall_fulfilled", "balance_paid", "left_segment", "removed"
]
VariantName = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]


class CallTask(BaseModel):
    """What a call step puts on the front-desk task list."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(
        default="Call {name}: no reply to the win-back messages",
        min_length=1,
        max_length=300,
        description="`{name}` is replaced by the patient's name.",
    )
    notes: str | None = Field(default=None, max_length=10_000)
    assignee: str = Field(default="Front desk", min_length=1, max_length=200)
    due_in_hours: int = Field(default=24, ge=0, le=24 * 30)


class CadenceStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_days: int = Field(
        ge=0,
        le=365,
        description="Days after `after`: 0 is the day itself (day 1 of the cadence).",
    )
    after: Literal["enrollment", "previous_step"] = Field(
        default="enrollment",
        description="Count the delay from enrollment, or from when the previous step ran.",
    )
    channel: StepChannel
    content: Content | None = Field(
        default=None, description="The message of an sms or email step (its default variant)."
    )
    variants: dict[VariantName, Content] = Field(
        default_factory=dict,
        max_length=20,
        description="Per segment variant (e.g. `hygiene`, `unscheduled_treatment`, "
        "`dormant`): the message those patients get instead of `content`.",
    )
    task: CallTask | None = Field(default=None, description="The task of a call step.")

    @model_validator(mode="after")
    def _fits_channel(self) -> CadenceStep:
        if self.channel == "call":
            if self.content is not None or self.variants:
                raise ValueError("a call step has a `task`, not message content")
            if self.task is None:
                self.task = CallTask()
            return self
        if self.task is not None:
            raise ValueError(f"an {self.channel} step has `content`, not a `task`")
        if self.content is None:
            raise ValueError(f"an {self.channel} step needs `content`")
        for name, variant in {"default": self.content, **self.variants}.items():
            if variant.channel != self.channel:
                raise ValueError(
                    f"variant {name!r} is {variant.channel}, the step is {self.channel}"
                )
        return self


class CadenceSource(BaseModel):
    """Continuous enrollment: patients entering the segment enter the cadence."""

    model_config = ConfigDict(extra="forbid")

    segment_id: IdText
    variant: VariantName = Field(
        default="default", description="The message variant these patients get."
    )


class CadenceExits(BaseModel):
    """Which events end an enrollment at once (also in the middle of a delay)."""

    model_config = ConfigDict(extra="forbid")

    booked: bool = Field(
        default=True, description="Any future appointment, online or from the PMS."
    )
    replied: bool = Field(default=True, description="A text reply (it becomes a front-desk task).")
    opted_out: bool = Field(default=True, description="An opt-out on any channel.")
    recall_fulfilled: bool = Field(
        default=True, description="No recall is due any more (one was due at enrollment)."
    )
    balance_paid: bool = Field(
        default=False,
        description="The guarantor's balance reached zero (it was owed at enrollment).",
    )
    left_segment: bool = Field(
        default=True, description="The patient no longer matches the segment they came from."
    )


class CadenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    template: str | None = Field(
        default=None,
        max_length=64,
        description="A built-in template (GET /v1/cadence-templates) supplying the steps "
        "when `steps` is not given.",
    )
    steps: list[CadenceStep] | None = Field(default=None, min_length=1, max_length=20)
    sources: list[CadenceSource] = Field(default_factory=list, max_length=20)
    exits: CadenceExits = Field(default_factory=CadenceExits)
    reentry_after_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Days after finishing or exiting before a patient may enter again; "
        "null: never again.",
    )
    household_aware: bool = Field(
        default=True,
        description="One message per household per step where members share the number or address.",
    )
    send_local_time: LocalTime = Field(
        default=dt.time(10, 0), description="Local time a step falls due on its day."
    )
    location_ids: list[IdText] = Field(
        default_factory=list,
        max_length=200,
        description="Empty: every location the caller may see.",
    )
    appointment_type_id: IdText | None = Field(
        default=None,
        description="A self-bookable appointment type the one-tap booking links preselect "
        "(a message's `{{booking.link}}` opens the widget for that patient).",
    )


class CadenceUpdate(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    steps: list[CadenceStep] | None = Field(default=None, min_length=1, max_length=20)
    sources: list[CadenceSource] | None = Field(default=None, max_length=20)
    exits: CadenceExits | None = None
    reentry_after_days: int | None = Field(default=None, ge=1, le=3650)
    household_aware: bool | None = None
    send_local_time: LocalTime | None = None
    appointment_type_id: IdText | None = None


class CadenceOut(BaseModel):
    id: str
    name: str
    description: str | None
    status: CadenceStatus
    paused_at: dt.datetime | None
    template: str | None
    steps: list[CadenceStep]
    sources: list[CadenceSource]
    exits: CadenceExits
    reentry_after_days: int | None
    household_aware: bool
    send_local_time: LocalTime
    location_ids: list[str]
    appointment_type_id: str | None
    active_enrollments: int
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CadenceTemplateOut(BaseModel):
    name: str
    title: str
    description: str
    steps: list[CadenceStep]


class EnrollRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_ids: list[IdText] = Field(min_length=1, max_length=500)
    variant: VariantName = "default"


class BookingInviteOut(BaseModel):
    """What the booking widget needs to open a one-tap link."""

    location_id: str
    publishable_key: str | None = Field(
        description="A key the widget may use from this site (null: the practice has none)"
    )
    appointment_type_id: str | None = Field(description="Preselected in the widget")
    first_name: str
    last_name: str
    expires_at: dt.datetime


class StepRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    position: int = Field(description="1 is the first step")
    channel: str
    outcome: Literal["sent", "suppressed", "task_created", "household_covered"]
    message_id: str | None
    task_id: str | None
    detail: str | None
    ran_at: dt.datetime


class EnrollmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    cadence_id: str
    patient_id: str
    location_id: str
    variant: str
    source: Literal["segment", "manual"]
    segment_id: str | None
    status: EnrollmentStatus
    enrolled_at: dt.datetime
    next_position: int | None = Field(description="The next step (1-based); null when done")
    next_due_at: dt.datetime | None
    exit_reason: ExitReason | None
    exited_at: dt.datetime | None
    completed_at: dt.datetime | None
    booked_appointment_id: str | None
    booked_at: dt.datetime | None
    booked_via_position: int | None = Field(
        description="The step whose one-tap booking link they booked through"
    )


class EnrollmentDetail(EnrollmentOut):
    steps: list[StepRunOut] = Field(description="The steps run so far")


class SkippedPatient(BaseModel):
    patient_id: str
    reason: Literal["already_enrolled", "reentry_not_allowed", "already_booked"]


class EnrollResult(BaseModel):
    enrolled: list[EnrollmentOut]
    skipped: list[SkippedPatient]


class MetricsRow(BaseModel):
    enrolled: int
    contacted: int = Field(
        description="Got at least one message or call task (or their household did, at a "
        "shared number or address)"
    )
    replied: int
    booked: int
    reactivation_rate: float = Field(description="booked / enrolled (0 when none enrolled)")
    opted_out: int
    median_days_to_booking: float | None


class VariantMetrics(MetricsRow):
    variant: str


class CycleMetrics(MetricsRow):
    cycle: str = Field(description="The month of enrollment, `YYYY-MM`")


class CadenceMetrics(BaseModel):
    cadence_id: str
    total: MetricsRow
    by_variant: list[VariantMetrics]
    by_cycle: list[CycleMetrics]
