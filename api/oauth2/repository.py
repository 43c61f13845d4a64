from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from api.core.repository import scoped
from api.oauth2.models import AuthorizationCode, OAuthClient, OAuthToken
from api.tenancy.models import StaffRight, StaffUser


def _active_client(client_id: str) -> Select[OAuthClient]:
    """System look-up: the client id tells us the tenant."""
    return select(OAuthClient).where(OAuthClient.id == client_id, OAuthClient.revoked_at.is_(None))


async def client_by_id_any_tenant(session: AsyncSession, client_id: str) -> OAuthClient | None:
    return (await session.execute(_active_client(client_id))).scalar_one_or_none()


# --- Sync look-ups for the Authlib server (it runs in a thread with a psycopg session). ---
# Token and code look-ups are system-level: the presented secret tells us the tenant.


def client_by_id_sync(session: Session, client_id: str) -> OAuthClient | None:
    return session.execute(_active_client(client_id)).scalar_one_or_none()


def token_by_access_hash_sync(session: Session, access_token_hash: str) -> OAuthToken | None:
    stmt = select(OAuthToken).where(OAuthToken.access_token_hash == access_token_hash)
    return session.execute(stmt).scalar_one_or_none()


def token_by_refresh_hash_sync(session: Session, refresh_token_hash: str) -> OAuthToken | None:
    # Locked so two refreshes racing on one token cannot both rotate it.
    stmt = (
        select(OAuthToken)
        .where(OAuthToken.refresh_token_hash == refresh_token_hash)
        .with_for_update()
    )
    return session.execute(stmt).scalar_one_or_none()


def revoke_token_family_sync(
    session: Session, tenant_id: str, family_id: str, now: datetime
) -> int:
    stmt = (
        update(OAuthToken)
        .where(
            OAuthToken.tenant_id == tenant_id,
            OAuthToken.family_id == family_id,
            OAuthToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch")
    )
    return session.execute(stmt).rowcount  # type: ignore[attr-defined, no-any-return]


def authorization_code_by_hash_sync(
    session: Session, code_hash: str, client_id: str
) -> AuthorizationCode | None:
    # Locked so a code presented twice at once is still used only once.
    stmt = (
        select(AuthorizationCode)
        .where(AuthorizationCode.code_hash == code_hash, AuthorizationCode.client_id == client_id)
        .with_for_update()
    )
    return session.execute(stmt).scalar_one_or_none()


def staff_user_by_email_sync(session: Session, tenant_id: str, email: str) -> StaffUser | None:
    stmt = scoped(StaffUser, tenant_id).where(StaffUser.email == email.strip().lower())
    return session.execute(stmt).scalar_one_or_none()


def staff_user_sync(session: Session, tenant_id: str, user_id: str) -> StaffUser | None:
    stmt = scoped(StaffUser, tenant_id).where(StaffUser.id == user_id)
    return session.execute(stmt).scalar_one_or_none()


def rights_of_sync(session: Session, tenant_id: str, user_id: str) -> list[StaffRight]:
    stmt = scoped(StaffRight, tenant_id).where(StaffRight.user_id == user_id)
    return list(session.execute(stmt).scalars())
