"""The typed per-request GraphQL context and its unit of work.

The caller is resolved exactly as REST resolves it (`resolve_principal`: same tokens, same
publishable-key origin check, same rate limits). A request without usable credentials
still gets a context, so GraphiQL and introspection load; every field that needs a caller
then fails with an `UNAUTHENTICATED` error (HTTP 200, GraphQL convention).

Resolvers share one tenant-bound session, created on first use and committed once after
an operation without errors (rolled back otherwise) by `finish`, which the router calls
after the operation, like `UnitOfWorkRoute` does for REST.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import Response
from strawberry.fastapi import BaseContext

from api.auth.dependencies import resolve_principal
from api.auth.principal import Principal
from api.core import idempotency
from api.core.db import bind_tenant, commit, rollback
from api.core.errors import Forbidden, Problem, Unauthorized
from api.core.settings import Settings


class Context(BaseContext):
    """What every resolver gets as `info.context`."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        principal: Principal | None,
        auth_problem: Problem | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.request_id = request_id
        self._sessions = sessions
        self._principal = principal
        self._auth_problem = auth_problem
        self._session: AsyncSession | None = None
        # Sibling fields resolve concurrently; one AsyncSession must not be used by two
        # coroutines at once, so database work takes turns.
        self._session_lock = asyncio.Lock()
        # Idempotency keys this operation marked in flight (see api/graphql/idempotency.py).
        self._claims: list[idempotency.IdempotencyClaim] = []

    @property
    def principal(self) -> Principal:
        """The caller; raises the authentication problem when there is none."""
        if self._principal is None:
            raise self._auth_problem or Unauthorized(
                "Send an access token: `Authorization: Bearer <token>`."
            )
        return self._principal

    @property
    def is_authenticated(self) -> bool:
        return self._principal is not None

    @property
    def has_session(self) -> bool:
        return self._session is not None

    @asynccontextmanager
    async def db(self) -> AsyncIterator[AsyncSession]:
        """The request's tenant-bound session, held exclusively for the block."""
        principal = self.principal
        async with self._session_lock:
            if self._session is None:
                session = self._sessions()
                bind_tenant(session, principal.tenant_id)
                self._session = session
            yield self._session

    async def claim_idempotency_key(self, claim: idempotency.IdempotencyClaim) -> Response | None:
        """Mark the key in flight (committed on its own, as for REST); the stored response
        when this is a replay. A claimed key is completed in the operation's transaction
        and released when the operation fails, so a corrected retry may reuse it."""
        stored = await idempotency.claim(self._sessions, claim, self.settings.idempotency)
        if stored is None:
            self._claims.append(claim)
        return stored

    async def finish(self, *, succeeded: bool) -> None:
        """Commit (then after-commit work) or roll back, and close the session."""
        session, self._session = self._session, None
        claims, self._claims = self._claims, []
        committed = False
        try:
            if session is not None:
                if succeeded:
                    await commit(session)
                    committed = True
                else:
                    await rollback(session)
        except BaseException:
            if session is not None:
                await rollback(session)
            raise
        finally:
            if session is not None:
                await session.close()
            if not committed:
                for claim in claims:
                    await idempotency.release(self._sessions, claim)


async def get_context(request: Request) -> Context:
    """FastAPI dependency building the context (also for the GraphiQL page)."""
    state = request.app.state.chairfill
    principal: Principal | None = None
    auth_problem: Problem | None = None
    try:
        principal = await resolve_principal(request)
    except (Unauthorized, Forbidden) as problem:
        # Reported by the fields that need a caller; rate limiting (429) still answers
        # at the HTTP level, as for REST.
        auth_problem = problem
    return Context(
        settings=state.settings,
        sessions=state.sessions,
        principal=principal,
        auth_problem=auth_problem,
        request_id=getattr(request.state, "request_id", None),
    )
