"""Which provider a tenant sends each channel through, and building it for a send.

Secrets are encrypted with the same Fernet helper as webhook secrets (a key derived from
CHAIRFILL_SECRET_KEY); the API only ever says which secrets are set."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.core.clock import utcnow
from api.core.errors import ValidationProblem
from api.core.settings import Settings
from api.messaging import repository
from api.messaging.models import ProviderSetting
from api.messaging.providers.base import ChannelProvider
from api.messaging.providers.sandbox import SandboxProvider
from api.messaging.providers.smtp import SmtpConfig, SmtpProvider
from api.messaging.providers.twilio import TwilioConfig, TwilioProvider
from api.messaging.schemas import ProviderIn, ProviderOut, TwilioProviderIn
from api.practice.contact import normalize_email, normalize_phone
from api.webhooks.signing import decrypt_secret, encrypt_secret

SECRET_FIELDS: dict[str, tuple[str, ...]] = {"smtp": ("password",), "twilio": ("auth_token",)}
KINDS_BY_CHANNEL = {"email": ("sandbox", "smtp"), "sms": ("sandbox", "twilio")}


def _problem(field: str, message: str) -> ValidationProblem:
    return ValidationProblem(
        f"Check {field}: {message}.", errors=[{"field": field, "message": message}]
    )


def read_secrets(settings: Settings, row: ProviderSetting) -> dict[str, str]:
    if not row.secrets_ciphertext:
        return {}
    loaded: dict[str, str] = json.loads(decrypt_secret(settings.secret_key, row.secrets_ciphertext))
    return loaded


def provider_out(channel: str, row: ProviderSetting | None, settings: Settings) -> ProviderOut:
    if row is None:
        return ProviderOut(
            channel=channel,
            kind="sandbox",
            config={},
            secrets_set=[],
            configured=False,
            updated_at=None,
        )
    return ProviderOut(
        channel=row.channel,
        kind=row.kind,
        config=dict(row.config),
        secrets_set=sorted(read_secrets(settings, row)),
        configured=True,
        updated_at=row.updated_at,
    )


async def list_providers(
    session: AsyncSession, tenant_id: str, settings: Settings
) -> list[ProviderOut]:
    rows = {r.channel: r for r in await repository.provider_settings(session, tenant_id)}
    return [provider_out(c, rows.get(c), settings) for c in ("email", "sms")]


def _check(channel: str, data: Any) -> dict[str, Any]:
    if data.kind not in KINDS_BY_CHANNEL[channel]:
        allowed = " or ".join(KINDS_BY_CHANNEL[channel])
        raise _problem("kind", f"{channel} is sent through {allowed}")
    config: dict[str, Any] = data.model_dump(exclude={"kind", *SECRET_FIELDS.get(data.kind, ())})
    try:
        if data.kind == "smtp":
            config["from_address"] = normalize_email(data.from_address)
        if isinstance(data, TwilioProviderIn):
            if not (data.from_number or data.messaging_service_sid):
                raise _problem("from_number", "set from_number or messaging_service_sid")
            if data.from_number:
                config["from_number"] = normalize_phone(data.from_number)
            if not data.base_url.startswith(("https://", "http://")):
                raise _problem("base_url", "an http(s) URL")
    except ValueError as exc:
        field = "from_address" if data.kind == "smtp" else "from_number"
        raise _problem(field, str(exc)) from None
    return config


async def put_provider(
    session: AsyncSession, tenant_id: str, channel: str, data: ProviderIn, settings: Settings
) -> ProviderOut:
    config = _check(channel, data)
    row = await repository.provider_setting(session, tenant_id, channel)
    stored = read_secrets(settings, row) if row is not None and row.kind == data.kind else {}
    secrets = dict(stored)
    for name in SECRET_FIELDS.get(data.kind, ()):
        value = getattr(data, name)
        if value:
            secrets[name] = value
    if data.kind == "twilio" and "auth_token" not in secrets:
        raise _problem("auth_token", "required (none is stored yet)")
    ciphertext = encrypt_secret(settings.secret_key, json.dumps(secrets)) if secrets else None
    if row is None:
        row = ProviderSetting(tenant_id=tenant_id, channel=channel, created_at=utcnow())
        session.add(row)
    row.kind = data.kind
    row.config = config
    row.secrets_ciphertext = ciphertext
    row.updated_at = utcnow()
    await session.flush()
    return provider_out(channel, row, settings)


async def delete_provider(session: AsyncSession, tenant_id: str, channel: str) -> None:
    row = await repository.provider_setting(session, tenant_id, channel)
    if row is not None:
        await session.delete(row)
        await session.flush()


def build_provider(
    session: AsyncSession,
    row: ProviderSetting,
    settings: Settings,
) -> ChannelProvider:
    secrets = read_secrets(settings, row)
    timeout = settings.messaging.provider_timeout
    config = dict(row.config)
    if row.kind == "smtp":
        smtp = SmtpConfig(**config, password=secrets.get("password"))
        return SmtpProvider(smtp, timeout, row.tenant_id)
    if row.kind == "twilio":
        twilio = TwilioConfig(**config, auth_token=secrets["auth_token"])
        return TwilioProvider(twilio, timeout)
    return SandboxProvider(session, row.tenant_id)


async def provider_for(
    session: AsyncSession,
    tenant_id: str,
    channel: str,
    settings: Settings,
) -> ChannelProvider | None:
    """The tenant's provider for `channel`; the sandbox when none is configured (outside
    production, see CHAIRFILL_MESSAGING__SANDBOX_WHEN_UNCONFIGURED); else None."""
    row = await repository.provider_setting(session, tenant_id, channel)
    if row is not None:
        return build_provider(session, row, settings)
    if settings.messaging.sandbox_when_unconfigured:
        return SandboxProvider(session, tenant_id)
    return None
