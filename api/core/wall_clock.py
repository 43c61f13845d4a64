"""A practice's wall-clock time of day (send at 10:00, rebuild at 23:00, quiet from 21:00):
the same local time at every location, whatever its UTC offset, so it never carries one.

JSON Schema's `format: time` is RFC 3339's full-time, which requires an offset
("10:00:00Z"); pydantic's default schema for `datetime.time` claims that format, so the
contract promised clients an offset we neither send nor want. `LocalTime` documents the
shape we really use (`HH:MM`, optional seconds and fraction) and refuses an offset."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

LOCAL_TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"


def _without_offset(value: dt.time) -> dt.time:
    if value.tzinfo is not None:
        raise ValueError("a local wall-clock time, without an offset (e.g. 10:00)")
    return value


LocalTime = Annotated[
    dt.time,
    AfterValidator(_without_offset),
    WithJsonSchema({"type": "string", "pattern": LOCAL_TIME_PATTERN, "examples": ["10:00"]}),
]
