"""The one place tenant filters are written. Every repository query over a
tenant-owned table starts from `scoped()`; row-level security is the second wall."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select

M = TypeVar("M")


def scoped(model: type[M], tenant_id: str, location_ids: frozenset[str] | None = None) -> Select[M]:
    """`SELECT model WHERE tenant_id = :tenant [AND location_id IN (:visible)]`."""
    stmt = select(model).where(model.tenant_id == tenant_id)  # type: ignore[attr-defined]
    if location_ids is not None:
        column: Any = model.id if model.__tablename__ == "locations" else model.location_id  # type: ignore[attr-defined]
        stmt = stmt.where(column.in_(sorted(location_ids)))
    return stmt
