from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.core.wall_clock import LocalTime
from api.segments.models import DEFAULT_REFRESH_TIME

RULE_DESCRIPTION = (
    'A versioned rule document: `{"version": 1, "rule": <node>}`. A node is a group '
    '(`{"all": [...]}`, `{"any": [...]}`, `{"not": <node>}`) or a predicate '
    '(`{"field": "balance", "op": "gt", "value": 200}`); fields and operators are listed '
    "by `GET /v1/segment-fields`. Errors point into this document with JSON pointers "
    "(`/rule/all/2/value`)."
)
RULE_EXAMPLE = {
    "version": 1,
    "rule": {
        "all": [
            {"field": "balance", "op": "gt", "value": 200},
            {"field": "overdue_hygiene", "op": "exists", "value": {}},
            {
                "field": "contacted",
                "op": "not_exists",
                "value": {"kinds": ["statement"], "within_days": 30},
            },
        ]
    },
}

RuleDocument = dict[str, Any]
Cadence = Literal["daily", "weekly"]


class SegmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Required unless `template`."
    )
    description: str | None = Field(default=None, max_length=2000)
    rule: RuleDocument | None = Field(
        default=None, description=RULE_DESCRIPTION, examples=[RULE_EXAMPLE]
    )
    template: str | None = Field(
        default=None,
        max_length=64,
        description="Create from a built-in template (`GET /v1/segment-templates`) instead "
        "of `rule`; name, description and cadence default to the template's.",
    )
    location_ids: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="Locations the segment covers (a subset of the caller's); empty: all "
        "the caller may see.",
    )
    refresh_cadence: Cadence | None = Field(default=None, description="Default daily.")
    refresh_local_time: LocalTime = Field(
        default=DEFAULT_REFRESH_TIME,
        description="Local time at each location the audience is rebuilt (after charting).",
    )
    refresh_weekday: int = Field(default=0, ge=0, le=6, description="Weekly: 0 = Monday.")


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    rule: RuleDocument | None = Field(default=None, description=RULE_DESCRIPTION)
    location_ids: list[str] | None = Field(default=None, max_length=500)
    refresh_cadence: Cadence | None = None
    refresh_local_time: LocalTime | None = None
    refresh_weekday: int | None = Field(default=None, ge=0, le=6)


class SegmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str | None
    rule: RuleDocument = Field(description=RULE_DESCRIPTION)
    location_ids: list[str] = Field(description="Empty: every location the caller may see.")
    template: str | None = Field(description="The template it was created from, if any.")
    refresh_cadence: Cadence
    refresh_local_time: LocalTime
    refresh_weekday: int
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class QualifierOut(BaseModel):
    name: str
    type: str = Field(description="strings, codes, choices, int, money, bool or choice")
    description: str
    choices: list[str]


class FieldOut(BaseModel):
    name: str
    type: Literal["number", "money", "date", "string", "enum", "boolean", "existence"]
    operators: list[str]
    description: str
    enum_values: list[str] = Field(description="Allowed values of an enum (empty: ids)")
    qualifiers: list[QualifierOut] = Field(description="Options of an existence field")


class TemplateOut(BaseModel):
    key: str
    name: str
    description: str
    category: str
    refresh_cadence: Cadence
    rule: RuleDocument


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: RuleDocument = Field(description=RULE_DESCRIPTION, examples=[RULE_EXAMPLE])
    location_ids: list[str] = Field(default_factory=list, max_length=500)


class PreviewPatient(BaseModel):
    id: str
    name: str
    location_id: str


class PreviewOut(BaseModel):
    count: int = Field(description="Patients matching now")
    sample: list[PreviewPatient] = Field(description="Up to 20 of them, by id")
    location_ids: list[str] = Field(description="The locations evaluated")
    data_as_of: dt.datetime | None = Field(
        description="The oldest sync watermark of those locations (null if one never synced)"
    )


class ExplainNodeOut(BaseModel):
    pointer: str = Field(description="JSON pointer of the node in the rule document")
    kind: Literal["all", "any", "not", "predicate"]
    result: bool
    field: str | None = None
    op: str | None = None
    value: Any = None
    observed: Any = Field(default=None, description="What the patient's data showed")
    children: list[ExplainNodeOut] | None = None


class ExplainOut(BaseModel):
    segment_id: str
    patient_id: str
    location_id: str
    matched: bool = Field(description="The patient is in the segment")
    location_in_segment: bool
    rule_matched: bool
    today: dt.date = Field(description="The location's date the rule was evaluated on")
    tree: ExplainNodeOut
    data_as_of: dt.datetime | None
