"""CSV import of patients and recalls: a practice's export, a column mapping
(`{"first_name": "First Name", ...}`: our field -> the CSV's header), all or nothing.

Every row is validated with the bridge's row models (phones to E.164, emails normalised),
and every error names the CSV row number (the header is row 1, so the first data row is
row 2) and the CSV column. Only a clean file is written, through `sync_batch`, in batches
of its size limit inside the caller's one transaction."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.core.errors import FieldError, NotFound, ValidationProblem
from api.practice import ingest
from api.practice.ingest_specs import ENTITIES
from api.practice.problems import BatchTooLarge
from api.tenancy import repository as tenancy_repository

IMPORTABLE = ("patients", "recalls")
MAX_CSV_ROWS = 100_000
MAX_REPORTED_ERRORS = 500
_ROW_PATH = re.compile(r"rows\[(\d+)\]\.?(\w*)")


class CsvImportResult(BaseModel):
    entity: str
    location_id: str
    rows: int = Field(description="Data rows in the file")
    created: int
    updated: int
    unchanged: int
    data_as_of: datetime | None


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Spreadsheet exports on Windows are often cp1252.
        return content.decode("cp1252", errors="replace")


def _check_mapping(entity: str, mapping: Mapping[str, Any], headers: list[str]) -> None:
    fields = ENTITIES[entity].row_model.model_fields
    errors = []
    for name, header in mapping.items():
        if name not in fields:
            errors.append(FieldError(field=f"mapping.{name}", message=f"not a {entity} field"))
        elif not isinstance(header, str) or header not in headers:
            errors.append(
                FieldError(field=f"mapping.{name}", message=f"no column {header!r} in the CSV")
            )
    required = [n for n, f in fields.items() if f.is_required() and n not in mapping]
    errors += [
        FieldError(field=f"mapping.{n}", message="required: map it to a column") for n in required
    ]
    if errors:
        raise ValidationProblem("The column mapping does not fit this CSV.", errors=errors)


def _row_error(number: int, column: str, message: str) -> FieldError:
    return FieldError(field=f"row {number}: {column}", message=message)


def _raise(errors: list[FieldError], entity: str) -> None:
    shown = errors[:MAX_REPORTED_ERRORS]
    raise ValidationProblem(
        f"The {entity} CSV has {len(errors)} error(s); nothing was imported."
        + (f" The first {len(shown)} are listed." if len(shown) < len(errors) else ""),
        errors=shown,
    )


async def import_csv(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_id: str,
    entity: str,
    content: bytes,
    mapping: Mapping[str, Any],
    now: datetime,
    visible_locations: frozenset[str] | None = None,
) -> CsvImportResult:
    if entity not in IMPORTABLE:
        raise NotFound(f"CSV import takes {' or '.join(IMPORTABLE)}, not {entity!r}.")
    location = await tenancy_repository.get_location(
        session, tenant_id, location_id, visible_locations
    )
    if location is None:
        raise NotFound(f"There is no location {location_id}.")
    reader = csv.DictReader(io.StringIO(_decode(content)))
    headers = [h for h in reader.fieldnames or [] if h]
    _check_mapping(entity, mapping, headers)
    column_of = {name: str(header) for name, header in mapping.items()}
    rows: list[dict[str, str]] = []
    for record in reader:
        # Blank cells are absent (the field's default applies), as in a bridge's rows.
        rows.append(
            {
                name: value.strip()
                for name, h in column_of.items()
                if (value := record.get(h) or "").strip()
            }
        )
        if len(rows) > MAX_CSV_ROWS:
            raise BatchTooLarge(f"At most {MAX_CSV_ROWS} rows per CSV import; split the file.")

    adapter: TypeAdapter[Any] = TypeAdapter(ENTITIES[entity].row_model)
    errors: list[FieldError] = []
    context = {"region": location.country or "US"}
    for index, row in enumerate(rows):
        try:
            adapter.validate_python(row, context=context)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                field = str(err["loc"][0]) if err["loc"] else ""
                message = err["msg"].removeprefix("Value error, ")
                errors.append(_row_error(index + 2, column_of.get(field, field or "row"), message))
    first_row: dict[str, int] = {}
    for index, row in enumerate(rows, start=2):
        external_id = row.get("external_id")
        if external_id in first_row:
            message = f"duplicate {external_id!r}: also row {first_row[external_id]}"
            errors.append(_row_error(index, column_of["external_id"], message))
        elif external_id is not None:
            first_row[external_id] = index
    if errors:
        _raise(errors, entity)

    created = updated = unchanged = 0
    data_as_of = None
    for start in range(0, len(rows), ingest.MAX_ROWS):
        try:
            result = await ingest.sync_batch(
                session,
                tenant_id=tenant_id,
                location_id=location_id,
                entity=entity,
                rows=rows[start : start + ingest.MAX_ROWS],
                now=now,
                visible_locations=visible_locations,
            )
        except ValidationProblem as problem:
            # Duplicates and unknown patients: name the CSV row and column instead.
            _raise([_renumber(e, start, column_of) for e in problem.errors], entity)
        created, updated = created + result.created, updated + result.updated
        unchanged += result.unchanged
        data_as_of = result.data_as_of
    return CsvImportResult(
        entity=entity,
        location_id=location_id,
        rows=len(rows),
        created=created,
        updated=updated,
        unchanged=unchanged,
        data_as_of=data_as_of,
    )


def _renumber(error: FieldError, offset: int, column_of: Mapping[str, str]) -> FieldError:
    match = _ROW_PATH.match(error.field)
    if match is None:
        return error
    field = match[2]
    return _row_error(offset + int(match[1]) + 2, column_of.get(field, field), error.message)
