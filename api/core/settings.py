"""One settings object, read from the environment (and a `.env` file when present).

Sections are small models so each domain reads only its own part. `DATABASE_URL` and
`REDIS_URL` keep their conventional names; everything else is `CHAIRFILL_*` (nested
sections with a double underscore, e.g. `CHAIRFILL_OAUTH__ACCESS_TOKEN_TTL_SECONDS`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me"


class OAuthSettings(BaseModel):
    access_token_ttl_seconds: int = 3600
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    authorization_code_ttl_seconds: int = 300
    # The issuer printed in metadata; empty means "derive from the request's base URL".
    issuer: str = ""


class RateLimitSettings(BaseModel):
    enabled: bool = True
    # Requests per minute, per OAuth client (or staff user's grant) and per publishable key
    # and client address.
    client_per_minute: int = 1200
    publishable_key_per_minute: int = 120
    anonymous_per_minute: int = 300


class IdempotencySettings(BaseModel):
    # How long a stored response is replayed; published in the docs and in the
    # `Idempotency-Key` header description.
    ttl_seconds: int = 24 * 3600
    # An in-flight marker older than this is considered abandoned (its request died).
    in_flight_timeout_seconds: int = 60


class GraphQLSettings(BaseModel):
    max_depth: int = 10
    max_cost: int = 5000


class WebhookSettings(BaseModel):
    # Loopback and private targets are refused in production; unset means "allowed
    # outside prod" (local receivers in development and tests).
    allow_private_targets: bool | None = None
    connect_timeout: float = 5.0
    total_timeout: float = 15.0
    # An endpoint failing without a single success for this long is disabled.
    disable_after_days: int = 5


class MessagingSettings(BaseModel):
    # A tenant that configured no provider for a channel sends through the sandbox
    # (messages recorded, readable at /v1/sandbox/messages); unset means "outside prod".
    sandbox_when_unconfigured: bool | None = None
    # Seconds for one provider call (SMTP conversation, SMS REST request).
    provider_timeout: float = 15.0


class BookingSettings(BaseModel):
    # How long a tentative hold keeps its slot before it expires (booking.expired).
    hold_ttl_seconds: int = 300
    # How long a hold whose patient match needs the front desk keeps its slot.
    exception_hold_ttl_seconds: int = 24 * 3600
    # Upper bound on how long a slot answer is cached (any calendar write invalidates it).
    slot_cache_ttl_seconds: int = 60
    # Rules of a location without its own booking policy.
    default_min_notice_minutes: int = 60
    default_horizon_days: int = 90
    default_step_minutes: int = 15


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CHAIRFILL_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CHAIRFILL_DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("REDIS_URL", "CHAIRFILL_REDIS_URL")
    )
    # Where `chairfill up` keeps the embedded PostgreSQL and Redis data between runs.
    data_dir: Path = Path(".chairfill")
    # Signs consent-page sessions and CSRF tokens.
    secret_key: str = DEV_SECRET
    # The public base URL used in links (booking links, docs); empty = from the request.
    public_url: str = ""
    log_level: str = "INFO"
    log_json: bool = True

    oauth: OAuthSettings = OAuthSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    idempotency: IdempotencySettings = IdempotencySettings()
    graphql: GraphQLSettings = GraphQLSettings()
    webhooks: WebhookSettings = WebhookSettings()
    messaging: MessagingSettings = MessagingSettings()
    booking: BookingSettings = BookingSettings()

    @model_validator(mode="after")
    def _resolve_webhook_targets(self) -> Settings:
        if self.webhooks.allow_private_targets is None:
            allowed = self.env != "prod"
            self.webhooks = self.webhooks.model_copy(update={"allow_private_targets": allowed})
        return self

    @model_validator(mode="after")
    def _resolve_messaging_sandbox(self) -> Settings:
        if self.messaging.sandbox_when_unconfigured is None:
            sandbox = self.env != "prod"
            self.messaging = self.messaging.model_copy(
                update={"sandbox_when_unconfigured": sandbox}
            )
        return self

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.env == "prod":
            if self.secret_key == DEV_SECRET or len(self.secret_key) < 32:
                raise ValueError(
                    "CHAIRFILL_SECRET_KEY must be set to a random value of at least 32 "
                    "characters outside development"
                )
            if not self.database_url or not self.redis_url:
                raise ValueError("DATABASE_URL and REDIS_URL are required outside development")
        return self

    @property
    def is_dev(self) -> bool:
        return self.env != "prod"


@lru_cache
def get_settings() -> Settings:
    return Settings()
