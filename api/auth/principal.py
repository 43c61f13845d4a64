"""Who is calling: an OAuth client acting as itself, an app acting for a staff user, or a
booking widget holding a publishable key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PrincipalKind = Literal["client", "user", "publishable_key"]


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    kind: PrincipalKind
    # The OAuth client id, or the publishable key's record id.
    client_id: str
    scopes: frozenset[str]
    # None means every location of the tenant.
    location_ids: frozenset[str] | None
    user_id: str | None = None
    token_id: str | None = None
    # A publishable key's allowed browser origins.
    allowed_origins: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        """Stable id of the caller (idempotency keys and rate limits are per caller)."""
        if self.kind == "user":
            return f"{self.client_id}:{self.user_id}"
        return self.client_id

    def has_scope(self, *scopes: str) -> bool:
        return any(s in self.scopes for s in scopes)

    def can_see_location(self, location_id: str) -> bool:
        return self.location_ids is None or location_id in self.location_ids
