"""A generated chunk of the demo practice as PostgreSQL COPY text, made in a worker
process so that generating the next chunks overlaps the database loading this one.

Each chunk is self-contained: a household's members, their guarantor and treatment plans
are in the same chunk, and the location's providers, operatories and appointment types
are written first and passed in (`ChunkContext.resource_ids`). The columns, defaults,
resolved references and `updated_at` are those `sync_batch` writes (loader.py compares
the two in a test)."""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from api.practice.batch_ids import new_ids
from api.practice.demo.generator import DemoSpec, Row, patient_chunk
from api.practice.ingest_specs import ENTITIES, EntitySpec

# COPY text format: backslash escapes for the characters that separate fields and rows.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_FORMATS: dict[type, Callable[[Any], str]] = {
    str: lambda v: v.translate(_ESCAPES),
    bool: lambda v: "t" if v else "f",
    int: str,
    Decimal: str,
    dt.date: dt.date.isoformat,
    dt.datetime: dt.datetime.isoformat,
}


def _text(value: Any) -> str:
    if value is None:
        return "\\N"
    return _FORMATS[type(value)](value)


@dataclass(frozen=True)
class ChunkContext:
    tenant_id: str
    location_id: str
    updated_at: dt.datetime
    # table -> external id -> our id, of the location's providers, operatories and types.
    resource_ids: dict[str, dict[str, str]]


@dataclass(frozen=True)
class EncodedRows:
    entity: str
    columns: list[str]
    rows: int
    text: bytes


def copy_columns(spec: EntitySpec) -> list[str]:
    columns = ["tenant_id", "location_id", "id", "external_id", *spec.columns]
    return columns + [r.column for r in spec.references] + ["updated_at", "deleted_at"]


def encode_chunk(
    spec: DemoSpec, location: int, number: int, context: ChunkContext
) -> list[EncodedRows]:
    """Generate chunk `number` of the location and encode every entity of it."""
    ids: dict[str, dict[str, str]] = {t: dict(m) for t, m in context.resource_ids.items()}
    encoded = []
    for entity, rows in patient_chunk(spec, location, number):
        if rows:
            encoded.append(_encode(ENTITIES[entity], rows, ids, context))
    return encoded


def _encode(
    spec: EntitySpec, rows: list[Row], ids: dict[str, dict[str, str]], context: ChunkContext
) -> EncodedRows:
    our_ids = new_ids(spec.id_kind, len(rows))
    ids.setdefault(spec.table_name, {}).update(
        (row["external_id"], our_id) for row, our_id in zip(rows, our_ids, strict=True)
    )
    if any(r.many for r in spec.references):
        raise ValueError(f"{spec.name}: list references are not generated per chunk")
    fields = spec.row_model.model_fields
    # What a row leaves out gets the row model's default, as validation would give it.
    defaults = {c: fields[c].get_default(call_default_factory=True) for c in spec.columns}
    defaults |= {r.field: None for r in spec.references}
    plain = operator.itemgetter("external_id", *spec.columns)
    targets = [(operator.itemgetter(r.field), ids.setdefault(r.table, {})) for r in spec.references]
    head = f"{_text(context.tenant_id)}\t{_text(context.location_id)}\t"
    tail = f"\t{_text(context.updated_at)}\t\\N\n"
    formats = _FORMATS
    lines = []
    for row, our_id in zip(rows, our_ids, strict=True):
        full = defaults | row
        raw = plain(full)
        # Strings as they are, the rest formatted; the line is checked for escapes below.
        values = [
            v if v.__class__ is str else "\\N" if v is None else formats[v.__class__](v)
            for v in raw
        ]
        nulls = raw.count(None)
        for target, known in targets:
            referenced = target(full)
            if referenced is None:
                values.append("\\N")
                nulls += 1
            else:
                values.append(known[referenced])
        line = "\t".join(values)
        # Only our NULL markers may hold a backslash and only our separators a tab; a
        # value with a backslash, tab or line break is written escaped (rare: never in
        # the generated names and codes, but they are data).
        if (
            line.count("\\") != nulls
            or line.count("\t") != len(values) - 1
            or "\n" in line
            or "\r" in line
        ):
            line = "\t".join([*(_text(v) for v in raw), *values[len(raw) :]])
        lines.append(head + our_id + "\t" + line + tail)
    return EncodedRows(spec.name, copy_columns(spec), len(rows), "".join(lines).encode())
