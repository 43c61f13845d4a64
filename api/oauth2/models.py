"""OAuth2 clients, tokens, authorization codes and publishable keys.

Every secret (client secret, access and refresh token, authorization code) is stored
only as its SHA-256: the values are long random strings, so a fast hash is enough and a
database leak yields nothing usable."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    Boolean,
    DateTime,
    ForeignKeyConstraint,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from api.core.db import Base
from api.core.models import created_at_column, id_column, tenant_column


class OAuthClient(Base):
    __tablename__ = "oauth_clients"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        # The client id is looked up before the tenant is known (token endpoint).
        Index("ix_oauth_clients_id", "id", unique=True),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    # Null for a public client (a native or browser app using PKCE only).
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    # Null: every location of the tenant.
    location_ids: Mapped[list[str] | None] = mapped_column(ARRAY(String(40)))
    redirect_uris: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    grant_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    created_at: Mapped[datetime] = created_at_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OAuthToken(Base):
    __tablename__ = "oauth_tokens"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index("ix_oauth_tokens_access_token_hash", "access_token_hash", unique=True),
        Index(
            "ix_oauth_tokens_refresh_token_hash",
            "refresh_token_hash",
            unique=True,
            postgresql_where="refresh_token_hash IS NOT NULL",
        ),
        Index("ix_oauth_tokens_expiry", "refresh_expires_at"),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    client_id: Mapped[str] = mapped_column(String(40))
    # Set when the app acts for a staff user (authorization code grant).
    user_id: Mapped[str | None] = mapped_column(String(40))
    access_token_hash: Mapped[str] = mapped_column(String(64))
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    location_ids: Mapped[list[str] | None] = mapped_column(ARRAY(String(40)))
    # Refresh rotation: every token issued from one authorization shares a family, so
    # presenting an already-rotated refresh token revokes the whole family.
    family_id: Mapped[str] = mapped_column(String(40))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    refresh_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AuthorizationCode(Base):
    __tablename__ = "oauth_authorization_codes"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index("ix_oauth_authorization_codes_code_hash", "code_hash", unique=True),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    code_hash: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[str] = mapped_column(String(40))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    location_ids: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(10))
    nonce: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = created_at_column()


class PublishableKey(Base):
    """A `pk_...` key a booking widget embeds in a public page: slots and booking only,
    for its locations, from its allowed origins."""

    __tablename__ = "publishable_keys"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        Index("ix_publishable_keys_key", "key", unique=True),
    )

    tenant_id: Mapped[str] = tenant_column()
    id: Mapped[str] = id_column()
    key: Mapped[str] = mapped_column(String(80))
    name: Mapped[str] = mapped_column(String(200))
    location_ids: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    allowed_origins: Mapped[list[str]] = mapped_column(ARRAY(Text))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = created_at_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
