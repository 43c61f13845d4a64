"""REST for CSV imports (`pms:sync`): a practice's patient or recall export, mapped."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import File, Form, Query, UploadFile

from api.core.clock import utcnow
from api.core.errors import FieldError, ValidationProblem
from api.core.routing import Idempotent, SessionDep, api_router
from api.practice import csv_import
from api.practice.dependencies import PmsSync

router = api_router("sync")
MAX_CSV_BYTES = 20 * 1024 * 1024


@router.post(
    "/v1/sync/locations/{location_id}/imports/csv",
    summary="Import patients or recalls from a CSV file with a column mapping",
    description="Multipart: `file` (the CSV, first line the headers) and `mapping` (JSON: "
    'our field -> the CSV header, e.g. `{"external_id": "Patient ID", "first_name": '
    '"First Name"}`). All or nothing: any bad row answers 422 listing every error as '
    "`row N: Column` (the header is row 1) and imports nothing. Requires `Idempotency-Key`.",
    dependencies=[Idempotent],
)
async def import_csv(
    location_id: str,
    principal: PmsSync,
    session: SessionDep,
    file: Annotated[UploadFile, File(description="The CSV, first line the headers")],
    mapping: Annotated[str, Form(description="JSON object: field -> CSV column header")],
    entity: Annotated[Literal["patients", "recalls"], Query()] = "patients",
) -> csv_import.CsvImportResult:
    try:
        parsed = json.loads(mapping)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ValidationProblem(
            "mapping must be a JSON object.",
            errors=[FieldError(field="mapping", message="a JSON object: field -> CSV header")],
        )
    content = await file.read(MAX_CSV_BYTES + 1)
    if len(content) > MAX_CSV_BYTES:
        raise ValidationProblem(
            "The file is too large.",
            errors=[FieldError(field="file", message=f"at most {MAX_CSV_BYTES} bytes")],
        )
    return await csv_import.import_csv(
        session,
        tenant_id=principal.tenant_id,
        location_id=location_id,
        entity=entity,
        content=content,
        mapping=parsed,
        now=utcnow(),
        visible_locations=principal.location_ids,
    )
