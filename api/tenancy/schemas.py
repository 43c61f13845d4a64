from __future__ import annotations

from typing import Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

_ZONES = available_timezones()


def check_timezone(value: str) -> str:
    if value not in _ZONES:
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. America/Chicago)")
    return value


class Address(BaseModel):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = Field(
        default=None, min_length=2, max_length=2, description="ISO 3166-1 alpha-2"
    )


class LocationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    timezone: str = Field(
        description="IANA time zone that gives the location's dates and hours meaning"
    )
    sms_registration_complete: bool
    address: Address
    phone: str | None = None


class TenantOut(BaseModel):
    id: str
    name: str
    kind: Literal["practice", "dso"]


class Me(BaseModel):
    tenant: TenantOut
    principal_type: Literal["client", "user", "publishable_key"]
    client_id: str
    user_id: str | None = None
    scopes: list[str]
    locations: list[LocationOut] = Field(description="The locations this token may touch")
    all_locations: bool = Field(
        description="True when the token is not limited to a list of locations"
    )


class TenantCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["practice", "dso"] = "practice"


class LocationCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    timezone: str
    sms_registration_complete: bool = False
    address: Address = Address()
    phone: str | None = None

    _tz = field_validator("timezone")(check_timezone)
