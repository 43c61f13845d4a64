"""Cursor pagination: `?limit=` (default 50, max 1000) and `?cursor=`; responses carry
`data` and `next_cursor` (null at the end). Cursors are opaque (base64 JSON of the last
row's sort key), and the order is stable because the sort key ends with the id."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Date, DateTime, Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from api.core.errors import ValidationProblem

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class PageParams(BaseModel):
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


def page_params(
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page (max 1000).")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=500, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([v.isoformat() if hasattr(v, "isoformat") else v for v in values])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != size:
            raise ValueError
        return values
    except ValueError as exc:
        raise _invalid_cursor() from exc


def _invalid_cursor() -> ValidationProblem:
    return ValidationProblem(
        "The cursor is not one this API returned.",
        errors=[{"field": "cursor", "message": "invalid cursor"}],
    )


def cursor_value(column: InstrumentedAttribute[Any], value: Any) -> Any:
    """The cursor's JSON value as the key column's Python type. A forged cursor (a list
    where a string belongs, text in a number column) fails here as a 422, not in the
    database as a 500."""
    column_type = column.type
    if isinstance(column_type, DateTime):
        if not isinstance(value, str):
            raise ValueError("a timestamp key needs an ISO 8601 string")
        return datetime.fromisoformat(value)
    if isinstance(column_type, Date):
        if not isinstance(value, str):
            raise ValueError("a date key needs an ISO 8601 string")
        return date.fromisoformat(value)
    try:
        python_type = column_type.python_type
    except NotImplementedError:
        python_type = object
    if value is None or isinstance(value, dict | list | bool):
        raise ValueError("a key is a plain string or number")
    if python_type is str and not isinstance(value, str):
        raise ValueError("a text key needs a string")
    if python_type is int and not isinstance(value, int):
        raise ValueError("an integer key needs an integer")
    if python_type is float and not isinstance(value, int | float):
        raise ValueError("a number key needs a number")
    return value


def keyset(
    stmt: Select[Any], keys: Sequence[InstrumentedAttribute[Any]], params: PageParams
) -> Select[Any]:
    """Order by `keys` (ascending; the last must be unique) and start after the cursor."""
    if params.cursor:
        values = decode_cursor(params.cursor, len(keys))
        try:
            typed = [cursor_value(k, v) for k, v in zip(keys, values, strict=True)]
        except ValueError as exc:
            raise _invalid_cursor() from exc
        stmt = stmt.where(
            tuple_(*keys) > tuple_(*[literal(v, k.type) for k, v in zip(keys, typed, strict=True)])
        )
    return stmt.order_by(*keys).limit(params.limit + 1)


def page_of(
    rows: Sequence[Any], keys: Sequence[str], params: PageParams
) -> tuple[list[Any], str | None]:
    """Split the `limit + 1` fetched rows into the page and the next cursor."""
    items = list(rows[: params.limit])
    if len(rows) <= params.limit:
        return items, None
    last = items[-1]
    return items, encode_cursor([getattr(last, k) for k in keys])
