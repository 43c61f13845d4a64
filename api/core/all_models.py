"""Imports every model so `Base.metadata` is complete (Alembic, tests)."""

from api.core.infra_models import IdempotencyRecord, Job
from api.oauth2.models import AuthorizationCode, OAuthClient, OAuthToken, PublishableKey
from api.tenancy.models import Location, StaffRight, StaffUser, Tenant

__all__ = [
    "AuthorizationCode",
    "IdempotencyRecord",
    "Job",
    "Location",
    "OAuthClient",
    "OAuthToken",
    "PublishableKey",
    "StaffRight",
    "StaffUser",
    "Tenant",
]
