from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.audiences.suppression import Suppression

Channel = Literal["sms", "email"]

AUDIENCE_DESCRIPTION = (
    "An audience is created from a segment (a segment may have several, e.g. one per "
    "channel or with different suppression) and materialises it into numbered versions: "
    "the rule's matches minus the suppressed, with the PMS sync watermark they were built "
    "on (`data_as_of`). It is rebuilt on its segment's cadence at the segment's local "
    "rebuild time in each location's time zone (each location when its own time comes), "
    "or on request; a rebuild over stale PMS data is refused and never half-built. "
    "Version 0 is the empty audience before its first build."
)


class AudienceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: str = Field(max_length=40, description="The segment it materialises")
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Default: the segment's name."
    )
    channel: Channel = Field(
        description="The channel it is for: decides which opt-outs "
        "and which contact (mobile or email) count"
    )
    suppression: Suppression = Field(default_factory=Suppression)


class AudiencePreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment_id: str = Field(max_length=40)
    channel: Channel
    suppression: Suppression = Field(default_factory=Suppression)


class SuppressedCounts(BaseModel):
    do_not_contact: int | None = Field(default=None, description="null: switched off")
    opted_out: int | None = None
    inactive: int | None = None
    in_collections: int | None = None
    no_contact: int | None = None
    seen_today: int | None = None
    contacted_recently: int | None = None


class AudiencePreviewOut(BaseModel):
    matched: int = Field(description="Patients the segment's rule matches now")
    suppressed: SuppressedCounts = Field(
        description="Matches each suppression removes, counted separately (a patient "
        "suppressed for two reasons counts in both)"
    )
    count: int = Field(description="Who would be in the audience: matched and not suppressed")
    location_ids: list[str]
    data_as_of: dt.datetime | None = Field(
        description="The oldest sync watermark of those locations (null if one never synced)"
    )


class AudienceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    segment_id: str
    name: str
    channel: Channel
    suppression: Suppression
    version: int = Field(description="The latest built version (0: never built)")
    total: int = Field(description="Members in that version")
    data_as_of: dt.datetime | None = Field(
        description="The oldest PMS sync watermark its members were built on"
    )
    built_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class RebuildOut(BaseModel):
    audience_id: str
    job_id: str = Field(description="The queued rebuild")
    status: Literal["queued"]
    location_ids: list[str] = Field(description="The locations it will rebuild")


class MemberOut(BaseModel):
    patient_id: str
    location_id: str
    first_name: str | None = Field(description="null when the patient left the mirror since")
    last_name: str | None
    preferred_name: str | None
    email: str | None
    mobile: str | None = Field(description="E.164")
    communication_preference: str | None
    member_since_version: int


class MembersPage(BaseModel):
    data: list[MemberOut]
    next_cursor: str | None
    version: int = Field(description="The version these members belong to")
    data_as_of: dt.datetime | None


class ChangeOut(BaseModel):
    patient_id: str
    location_id: str
    change: Literal["added", "removed"]
    reason: str = Field(
        description="added: `matched_rule` or `no_longer_suppressed`; removed: "
        "`no_longer_matches`, `patient_removed`, `location_removed` or "
        "`suppressed:<reason>` (e.g. `suppressed:opted_out`)"
    )
    version: int = Field(description="The version the change happened in")
    first_name: str | None
    last_name: str | None
    email: str | None
    mobile: str | None


class ChangesPage(BaseModel):
    data: list[ChangeOut]
    next_cursor: str | None
    since_version: int
    to_version: int = Field(description="The version the changes lead to (the latest)")
    added: int = Field(description="Patients added in all (every page)")
    removed: int = Field(description="Patients removed in all")
    data_as_of: dt.datetime | None


class DoNotContactCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patient_id: str | None = Field(default=None, max_length=40)
    phone: str | None = Field(
        default=None, max_length=32, description="A phone number (stored as E.164)"
    )
    email: str | None = Field(default=None, max_length=254)
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _someone(self) -> DoNotContactCreate:
        if self.patient_id is None and self.phone is None and self.email is None:
            raise ValueError("give a patient_id, a phone or an email (or several)")
        return self


class DoNotContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    patient_id: str | None
    phone: str | None
    email: str | None
    note: str | None
    created_by: str | None
    created_at: dt.datetime
