"""REST: template previews and variables, the message ledger, manual sends, the sandbox
outbox, and the tenant's provider and messaging settings."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Path, Query, Request, Response, Security

from api.auth.dependencies import authorize
from api.auth.principal import Principal
from api.auth.scopes import Scope
from api.core.ids import new_id
from api.core.pagination import Page, PageParams, page_params
from api.core.routing import Idempotent, SessionDep, api_router
from api.core.settings import Settings
from api.messaging import provider_settings, service
from api.messaging.schemas import (
    MessageOut,
    MessageStatus,
    PreferencesIn,
    PreferencesOut,
    PreviewOut,
    PreviewRequest,
    ProviderIn,
    ProviderOut,
    SandboxMessageOut,
    SendRequest,
    SourceKind,
    VariableOut,
)

router = api_router("messaging")

CommunicationsReview = Annotated[
    Principal, Security(authorize, scopes=[Scope.COMMUNICATIONS_REVIEW.value])
]
CommunicationsManage = Annotated[
    Principal, Security(authorize, scopes=[Scope.COMMUNICATIONS_MANAGE.value])
]
Pages = Annotated[PageParams, Depends(page_params)]
ChannelPath = Annotated[Literal["sms", "email"], Path(description="`sms` or `email`")]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.chairfill.settings
    return settings


AppSettings = Annotated[Settings, Depends(_settings)]


@router.get("/v1/templates/variables", summary="The variables templates may use")
async def list_template_variables(principal: CommunicationsReview) -> list[VariableOut]:
    return service.list_variables()


@router.post(
    "/v1/templates/preview",
    summary="Render a template for a patient (or a sample): SMS length and segments, email "
    "HTML and text",
)
async def preview_template(
    data: PreviewRequest,
    principal: CommunicationsReview,
    session: SessionDep,
    settings: AppSettings,
) -> PreviewOut:
    return await service.preview(session, principal, data, settings)


@router.post(
    "/v1/messages",
    status_code=201,
    summary="Send one message to a patient now (source `manual`)",
    dependencies=[Idempotent],
)
async def send_message(
    data: SendRequest,
    principal: CommunicationsManage,
    session: SessionDep,
    settings: AppSettings,
) -> MessageOut:
    outcome = await service.send_manual(session, principal, data, settings, new_id("message"))
    return MessageOut.model_validate(outcome.message)


@router.get("/v1/messages", summary="The message ledger (oldest first)")
async def list_messages(
    principal: CommunicationsReview,
    session: SessionDep,
    page: Pages,
    source_kind: SourceKind | None = None,
    source_id: Annotated[str | None, Query(max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$")] = None,
    patient_id: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_]+$")] = None,
    status: MessageStatus | None = None,
    channel: Literal["sms", "email"] | None = None,
) -> Page[MessageOut]:
    filters: dict[str, str | None] = {
        "source_kind": source_kind,
        "source_id": source_id,
        "patient_id": patient_id,
        "status": status,
        "channel": channel,
    }
    items, cursor = await service.list_messages(session, principal, page, filters)
    return Page(data=[MessageOut.model_validate(m) for m in items], next_cursor=cursor)


@router.get("/v1/messages/{message_id}", summary="One message and its delivery status")
async def get_message(
    message_id: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_]+$")],
    principal: CommunicationsReview,
    session: SessionDep,
) -> MessageOut:
    return MessageOut.model_validate(await service.get_message(session, principal, message_id))


@router.get("/v1/sandbox/messages", summary="What the sandbox provider recorded instead of sending")
async def list_sandbox_messages(
    principal: CommunicationsReview,
    session: SessionDep,
    page: Pages,
    channel: Literal["sms", "email"] | None = None,
    to: Annotated[
        str | None, Query(max_length=254, pattern=r"^[^\x00]*$", description="Recipient")
    ] = None,
) -> Page[SandboxMessageOut]:
    items, cursor = await service.list_sandbox(session, principal, page, channel, to)
    return Page(data=[SandboxMessageOut.model_validate(m) for m in items], next_cursor=cursor)


@router.get(
    "/v1/messaging/providers", summary="The provider of each channel (secrets never returned)"
)
async def list_providers(
    principal: CommunicationsManage, session: SessionDep, settings: AppSettings
) -> list[ProviderOut]:
    return await provider_settings.list_providers(session, principal.tenant_id, settings)


@router.put(
    "/v1/messaging/providers/{channel}",
    summary="Set the provider of a channel (SMTP for email, Twilio for SMS, or the sandbox)",
)
async def put_provider(
    channel: ChannelPath,
    data: ProviderIn,
    principal: CommunicationsManage,
    session: SessionDep,
    settings: AppSettings,
) -> ProviderOut:
    return await provider_settings.put_provider(
        session, principal.tenant_id, channel, data, settings
    )


@router.delete(
    "/v1/messaging/providers/{channel}",
    status_code=204,
    summary="Forget a channel's provider (back to the default)",
)
async def delete_provider(
    channel: ChannelPath, principal: CommunicationsManage, session: SessionDep
) -> Response:
    await provider_settings.delete_provider(session, principal.tenant_id, channel)
    return Response(status_code=204)


@router.get("/v1/messaging/settings", summary="The practice's messaging choices")
async def get_messaging_settings(
    principal: CommunicationsReview, session: SessionDep
) -> PreferencesOut:
    return await service.get_preferences(session, principal.tenant_id)


@router.put("/v1/messaging/settings", summary="Change the practice's messaging choices")
async def put_messaging_settings(
    data: PreferencesIn, principal: CommunicationsManage, session: SessionDep
) -> PreferencesOut:
    return await service.put_preferences(session, principal.tenant_id, data)
