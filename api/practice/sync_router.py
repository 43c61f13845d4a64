"""REST for the PMS bridge (`pms:sync`): pushing chart data, taking write-backs."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import Annotated, Any, Literal

import pydantic_core
from fastapi import Depends, Query, Request, Response

from api.core.clock import utcnow
from api.core.pagination import Page, PageParams, page_params
from api.core.routing import (
    Idempotent,
    IdempotentOptional,
    SessionDep,
    UnitOfWorkRoute,
    api_router,
)
from api.practice import ingest, writeback
from api.practice.dependencies import PmsSync, WritebackReader
from api.practice.ingest_specs import ENTITIES
from api.practice.schemas import (
    AckIn,
    ClaimIn,
    ClaimOut,
    SyncBatchIn,
    SyncBatchResult,
    WritebackOut,
)

router = api_router("sync")
writebacks_router = api_router("writebacks")


class _BulkJSONRequest(Request):
    async def json(self) -> Any:
        # A 10,000-row batch is megabytes of JSON: pydantic-core's parser reads it from
        # the bytes in a fraction of the time `json.loads` takes. Anything it refuses is
        # handed to `json.loads`, so a malformed body fails (422 json_invalid) as before.
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = pydantic_core.from_json(body)
            except ValueError:
                self._json = json.loads(body)
        return self._json


class _BulkJSONRoute(UnitOfWorkRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(_BulkJSONRequest(request.scope, request.receive))

        return handle


SyncEntity = StrEnum(  # type: ignore[misc]
    "SyncEntity", {name.replace("-", "_").upper(): name for name in ENTITIES}
)


async def push_batch(
    location_id: str,
    entity: SyncEntity,
    body: SyncBatchIn,
    principal: PmsSync,
    session: SessionDep,
) -> SyncBatchResult:
    return await ingest.sync_batch(
        session,
        tenant_id=principal.tenant_id,
        location_id=location_id,
        entity=entity.value,
        rows=body.rows,
        deletes=body.deletes,
        watermark=body.watermark,
        now=utcnow(),
        visible_locations=principal.location_ids,
    )


# Added by hand for its route class: the batch body is read with the bulk JSON parser.
router.add_api_route(
    "/v1/sync/locations/{location_id}/{entity}",
    push_batch,
    methods=["POST"],
    route_class_override=_BulkJSONRoute,
    summary="Push a batch of PMS rows (upserts by external id, deletes as tombstones)",
    description="All or nothing: a batch with any bad row answers 422 listing every row "
    "error (`rows[17].birthdate`) and writes nothing. Up to 10,000 rows; references to "
    "other rows are external ids (`patient_external_id`), so push entities in the order "
    "providers, operatories, appointment-types, patients, schedules, appointments, "
    "recalls, treatment-plans, procedures, ledger, communications, opt-outs. "
    "Requires `Idempotency-Key`.",
    dependencies=[Idempotent],
    responses={413: {"description": "More than 10,000 rows or deletes"}},
)


@router.get(
    "/v1/sync/locations/{location_id}/writebacks",
    summary="Write-backs of a location (pending: not yet taken, or the lease ran out)",
)
async def list_location_writebacks(
    location_id: str,
    principal: PmsSync,
    session: SessionDep,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[
        Literal["pending", "claimed", "succeeded", "failed"] | None, Query()
    ] = "pending",
) -> Page[WritebackOut]:
    items, cursor = await writeback.list_writebacks(
        session, principal, location_id, status, page, utcnow()
    )
    return Page(data=items, next_cursor=cursor)


@router.post(
    "/v1/sync/writebacks/claim",
    summary="Claim open write-backs of a location with a lease",
    description="Atomic: two bridges claiming at once never get the same item. An item "
    "whose lease runs out is open again.",
    dependencies=[IdempotentOptional],
)
async def claim_writebacks(body: ClaimIn, principal: PmsSync, session: SessionDep) -> ClaimOut:
    return await writeback.claim(session, principal, body, utcnow())


@router.post(
    "/v1/sync/writebacks/{writeback_id}/ack",
    summary="Report a claimed write-back's outcome",
    description="`succeeded` with the PMS's id, or `failed` with the reason. The same ack "
    "again is harmless; an ack for a lease that no longer holds the item answers 409.",
    dependencies=[IdempotentOptional],
)
async def ack_writeback(
    writeback_id: str, body: AckIn, principal: PmsSync, session: SessionDep
) -> WritebackOut:
    return await writeback.acknowledge(session, principal, writeback_id, body, utcnow())


@writebacks_router.get("/v1/writebacks/{writeback_id}", summary="One write-back and its state")
async def get_writeback(
    writeback_id: str, principal: WritebackReader, session: SessionDep
) -> WritebackOut:
    return await writeback.get_writeback(session, principal, writeback_id, utcnow())
