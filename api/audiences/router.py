"""REST: audiences (create from a segment, preview suppression, members, changes, CSV
export, rebuild) and the tenant's do-not-contact list."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Response, Security

from api.audiences import do_not_contact, export, service
from api.audiences.schemas import (
    AUDIENCE_DESCRIPTION,
    AudienceCreate,
    AudienceOut,
    AudiencePreviewOut,
    AudiencePreviewRequest,
    ChangesPage,
    DoNotContactCreate,
    DoNotContactOut,
    MembersPage,
    RebuildOut,
)
from api.auth.dependencies import authorize
from api.auth.principal import Principal
from api.auth.scopes import Scope
from api.core.clock import utcnow
from api.core.pagination import Page, PageParams, page_params
from api.core.routing import IdempotentOptional, SessionDep, api_router

router = api_router("audiences")
dnc_router = api_router("do-not-contact")

CommunicationsReview = Annotated[
    Principal, Security(authorize, scopes=[Scope.COMMUNICATIONS_REVIEW.value])
]
CommunicationsManage = Annotated[
    Principal, Security(authorize, scopes=[Scope.COMMUNICATIONS_MANAGE.value])
]
AudiencesRead = Annotated[Principal, Security(authorize, scopes=[Scope.AUDIENCES_READ.value])]
Pages = Annotated[PageParams, Depends(page_params)]


@router.post(
    "/v1/audiences",
    status_code=201,
    summary="Create an audience from a segment",
    description=AUDIENCE_DESCRIPTION
    + " Created empty (version 0); `POST /v1/audiences/{id}/rebuild` builds it now.",
    dependencies=[IdempotentOptional],
)
async def create_audience(
    data: AudienceCreate, principal: CommunicationsManage, session: SessionDep
) -> AudienceOut:
    audience = await service.create_audience(session, principal, data, utcnow())
    return AudienceOut.model_validate(audience)


@router.get("/v1/audiences", summary="List audiences (by id)", description=AUDIENCE_DESCRIPTION)
async def list_audiences(
    principal: CommunicationsReview,
    session: SessionDep,
    page: Pages,
    segment_id: Annotated[
        str | None, Query(max_length=40, description="Only this segment's audiences")
    ] = None,
) -> Page[AudienceOut]:
    items, cursor = await service.list_audiences(session, principal, page, segment_id)
    return Page(data=[AudienceOut.model_validate(a) for a in items], next_cursor=cursor)


@router.post(
    "/v1/audiences/preview",
    summary="Preview a segment as an audience: matches, each suppression's count, total",
)
async def preview_audience_draft(
    data: AudiencePreviewRequest, principal: CommunicationsReview, session: SessionDep
) -> AudiencePreviewOut:
    return await service.preview(session, principal, data, utcnow())


@router.get("/v1/audiences/{audience_id}", summary="One audience (counts, version, data_as_of)")
async def get_audience(
    audience_id: str, principal: CommunicationsReview, session: SessionDep
) -> AudienceOut:
    return AudienceOut.model_validate(await service.get_audience(session, principal, audience_id))


@router.delete(
    "/v1/audiences/{audience_id}", status_code=204, summary="Delete an audience and its versions"
)
async def delete_audience(
    audience_id: str, principal: CommunicationsManage, session: SessionDep
) -> Response:
    await service.delete_audience(session, principal, audience_id)
    return Response(status_code=204)


@router.get(
    "/v1/audiences/{audience_id}/preview",
    summary="Who would be in the audience if it were rebuilt now, with suppression counts",
)
async def preview_audience(
    audience_id: str, principal: CommunicationsReview, session: SessionDep
) -> AudiencePreviewOut:
    return await service.preview_audience(session, principal, audience_id, utcnow())


@router.post(
    "/v1/audiences/{audience_id}/rebuild",
    status_code=202,
    summary="Rebuild the audience now (queued)",
    description="Queues a rebuild of every location of the audience. 409 (stale-data) "
    "when a location's PMS data is too old; a rebuild that finds it stale when it runs is "
    "refused with an `audience.rebuild_refused` event. `audience.updated` announces the "
    "new version.",
    dependencies=[IdempotentOptional],
)
async def rebuild_audience(
    audience_id: str, principal: CommunicationsManage, session: SessionDep
) -> RebuildOut:
    return await service.request_rebuild(session, principal, audience_id, utcnow())


@router.get(
    "/v1/audiences/{audience_id}/members",
    summary="The members of a version (default the latest), with contact details",
    description="By patient id, cursor-paginated; the cursor keeps the version, so a "
    "rebuild between pages does not mix versions. Contact details are the mirror's now.",
)
async def list_members(
    audience_id: str,
    principal: AudiencesRead,
    session: SessionDep,
    page: Pages,
    version: Annotated[
        int | None, Query(ge=0, description="A built version (default: the latest)")
    ] = None,
) -> MembersPage:
    return await service.members(session, principal, audience_id, page, version)


@router.get(
    "/v1/audiences/{audience_id}/changes",
    summary="Who joined and who left since a version, with reasons",
    description="Patients in the latest version but not in `since_version` (added) and "
    "the other way round (removed), by patient id. `since_version=0` lists every member "
    "as added.",
)
async def list_changes(
    audience_id: str,
    principal: AudiencesRead,
    session: SessionDep,
    page: Pages,
    since_version: Annotated[int, Query(ge=0, description="The version the caller holds")],
) -> ChangesPage:
    return await service.changes(session, principal, audience_id, since_version, page)


@router.get(
    "/v1/audiences/{audience_id}/export.csv",
    summary="The members as a Dentrix Ascend custom list (CSV)",
    description='Columns "First Name", "Last Name", "Email", "Mobile Phone".',
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "The CSV file"}},
)
async def export_audience(
    audience_id: str, principal: AudiencesRead, session: SessionDep
) -> Response:
    body = await export.export_csv(session, principal, audience_id)
    return Response(
        content=body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{audience_id}.csv"'},
    )


# --- do-not-contact ------------------------------------------------------------------------


@dnc_router.post(
    "/v1/do-not-contact",
    status_code=201,
    summary="Add a do-not-contact entry (patient, phone and/or email)",
    description="Every audience with the `do_not_contact` suppression leaves these "
    "patients out from its next rebuild.",
    dependencies=[IdempotentOptional],
)
async def add_do_not_contact(
    data: DoNotContactCreate, principal: CommunicationsManage, session: SessionDep
) -> DoNotContactOut:
    entry = await do_not_contact.add_entry(session, principal, data, utcnow())
    return DoNotContactOut.model_validate(entry)


@dnc_router.get("/v1/do-not-contact", summary="The do-not-contact list (by id)")
async def list_do_not_contact(
    principal: CommunicationsReview, session: SessionDep, page: Pages
) -> Page[DoNotContactOut]:
    items, cursor = await do_not_contact.list_entries(session, principal, page)
    return Page(data=[DoNotContactOut.model_validate(e) for e in items], next_cursor=cursor)


@dnc_router.delete(
    "/v1/do-not-contact/{entry_id}", status_code=204, summary="Remove a do-not-contact entry"
)
async def remove_do_not_contact(
    entry_id: str, principal: CommunicationsManage, session: SessionDep
) -> Response:
    await do_not_contact.remove_entry(session, principal, entry_id)
    return Response(status_code=204)
