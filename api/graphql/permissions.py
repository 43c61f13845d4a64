"""Permission classes shared with REST.

`RequireScopes("communications:review")` checks the caller with the same
`check_scopes` as REST routes: implied scopes (manage implies review) and the refusal of
publishable keys are identical. A refusal raises the REST problem, which the error
extension reports as `FORBIDDEN` (with `required_scopes`) or `UNAUTHENTICATED`.

    @strawberry.field(extensions=[requires_scopes("communications:review")])
    async def campaigns(self, info: Info) -> ...

That form also shows the scopes in the schema (`@requiresScopes(scopes: [...])`), as
OpenAPI shows them for REST; `permission_classes=[RequireScopes(...)]` checks the same
but Strawberry adds no directive for it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import strawberry
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.schema_directive import Location

from api.auth.dependencies import check_scopes
from api.core.errors import MissingScope


@strawberry.schema_directive(
    locations=[Location.FIELD_DEFINITION],
    name="requiresScopes",
    description="The OAuth2 scopes a token needs to resolve this field.",
)
class RequiresScopes:
    scopes: list[str]


class ScopePermission(BasePermission):
    """Base of the classes `RequireScopes` makes; `scopes` is set per class."""

    scopes: tuple[str, ...] = ()

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        # Raises Unauthorized without a caller, Forbidden / MissingScope on refusal.
        check_scopes(info.context.principal, list(self.scopes))
        return True

    def on_unauthorized(self) -> None:
        raise MissingScope(list(self.scopes))


@cache
def RequireScopes(*scopes: str) -> type[ScopePermission]:
    """A permission class requiring every scope in `scopes`."""
    name = "RequireScopes_" + "_".join(s.replace(":", "_") for s in scopes)
    return type(
        name,
        (ScopePermission,),
        {"scopes": tuple(scopes), "_schema_directive": RequiresScopes(scopes=list(scopes))},
    )


def requires_scopes(*scopes: str) -> PermissionExtension:
    """The field extension checking `RequireScopes(*scopes)` and documenting it."""
    return PermissionExtension([RequireScopes(*scopes)()], use_directives=True)
