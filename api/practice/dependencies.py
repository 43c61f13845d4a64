"""Scope aliases for the practice routes (OpenAPI shows each operation's scopes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Security

from api.auth.dependencies import authenticate, authorize, check_scopes
from api.auth.principal import Principal
from api.core.errors import Forbidden, MissingScope

PatientsRead = Annotated[Principal, Security(authorize, scopes=["patients:read"])]
ScheduleRead = Annotated[Principal, Security(authorize, scopes=["schedule:read"])]
PmsSync = Annotated[Principal, Security(authorize, scopes=["pms:sync"])]


def any_scope(*scopes: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A token holding at least one of `scopes` (publishable keys are refused)."""

    async def _authorize(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.kind == "publishable_key":
            check_scopes(principal, list(scopes))  # raises Forbidden
            raise Forbidden("Publishable keys may only call the slot and booking endpoints.")
        if not principal.has_scope(*scopes):
            raise MissingScope(list(scopes))
        return principal

    return _authorize


SyncStatusReader = Annotated[
    Principal, Depends(any_scope("pms:sync", "patients:read", "schedule:read"))
]
WritebackReader = Annotated[Principal, Depends(any_scope("pms:sync", "appointments:write"))]
