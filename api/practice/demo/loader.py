"""Writing a generated practice into the mirror.

Two ways, same rows. `via="sync"` sends every batch through `ingest.sync_batch`, the path
a bridge's pushes take. `via="copy"` is for big practices (a 1,000,000-patient one): the
generated rows are valid and normalised by construction, so instead of validating and
upserting them it COPYs them in with the same ids, columns, resolved references and
`updated_at` that sync_batch would have written, and records each batch's counts and the
watermark with the same `freshness.record_batch`. COPY into a table with row-level
security is refused for a role the policy applies to, so the copy loader needs a system
unit of work (an admin command: `chairfill demo`, `chairfill up --demo`, the benchmark).
A test loads one seed both ways and compares the tables.

The copy loader generates the patients' chunks in worker processes, as COPY text
(copy_text.py), while this process streams finished chunks into PostgreSQL: generation
is most of the work, and it overlaps the database's instead of alternating with it."""

from __future__ import annotations

import asyncio
import io
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from api.practice import freshness, ingest, ingest_sql
from api.practice.batch_ids import new_ids
from api.practice.demo import bulk_indexes
from api.practice.demo.copy_text import ChunkContext, EncodedRows, encode_chunk
from api.practice.demo.generator import (
    Chunk,
    DemoSpec,
    Row,
    chunk_count,
    patient_chunks,
    resources,
)
from api.practice.ingest_specs import ENTITIES, EntitySpec

Progress = Callable[[str, int], None]  # (entity, rows just written)


@dataclass
class LoadResult:
    rows: dict[str, int] = field(default_factory=dict)

    def add(self, entity: str, n: int) -> None:
        self.rows[entity] = self.rows.get(entity, 0) + n


def chunks_of(spec: DemoSpec, location: int) -> Iterable[Chunk]:
    yield resources(spec, location)
    yield from patient_chunks(spec, location)


async def load_practice(
    session: AsyncSession,
    *,
    tenant_id: str,
    location_ids: list[str],
    spec: DemoSpec,
    now: datetime,
    via: Literal["sync", "copy"] = "sync",
    progress: Progress | None = None,
) -> LoadResult:
    """Generate and write `spec` (location i of the spec into location_ids[i])."""
    if len(location_ids) != spec.locations:
        raise ValueError(f"{spec.locations} location(s) in the spec, {len(location_ids)} given")
    result = LoadResult()
    if via == "copy":
        tables = [s.table_name for s in ENTITIES.values()]
        connection = await _begun(session)
        rebuild = await bulk_indexes.drop_for_load(connection, tables)
        for index, location_id in enumerate(location_ids):
            copier = Copier(session, tenant_id, location_id, now)
            await copier.copy_location(spec, index, result, progress)
        await bulk_indexes.rebuild_after_load(connection, rebuild, tables)
        return result
    for index, location_id in enumerate(location_ids):
        for chunk in chunks_of(spec, index):
            for entity, rows in chunk:
                if rows:
                    await _sync(session, tenant_id, location_id, entity, rows, now)
                    _count(result, progress, entity, len(rows))
    return result


async def _begun(session: AsyncSession) -> Any:
    """The session's asyncpg connection, inside its transaction: SQLAlchemy's adapter
    begins the transaction with its first statement, and raw statements (COPY, DDL)
    must never run in autocommit."""
    await session.execute(text("SELECT 1"))
    return await ingest_sql.driver_connection(session)


def _count(result: LoadResult, progress: Progress | None, entity: str, rows: int) -> None:
    result.add(entity, rows)
    if progress is not None:
        progress(entity, rows)


async def _sync(
    session: AsyncSession,
    tenant_id: str,
    location_id: str,
    entity: str,
    rows: list[Row],
    now: datetime,
) -> None:
    for start in range(0, len(rows), ingest.MAX_ROWS):
        await ingest.sync_batch(
            session,
            tenant_id=tenant_id,
            location_id=location_id,
            entity=entity,
            rows=rows[start : start + ingest.MAX_ROWS],
            watermark=now,
            now=now,
        )


# Worker processes generating the patients' chunks (the database takes the other core).
GENERATOR_PROCESSES = 2
# Entities other rows refer to: their external id -> our id is kept while loading.
_REFERENCED = {"providers", "operatories", "appointment-types", "patients", "treatment-plans"}


class Copier:
    def __init__(self, session: AsyncSession, tenant_id: str, location_id: str, now: datetime):
        self.session, self.tenant_id, self.location_id, self.now = (
            session, tenant_id, location_id, now,
        )  # fmt: skip
        self.ids: dict[str, dict[str, str]] = {}
        self.checks_off = False

    async def _skip_reference_triggers(self, connection: Any) -> None:
        """Every reference was resolved from the ids this loader just assigned, so the
        per-row foreign-key triggers (a locking look-up of the parent row each, most of
        the COPY's time) add nothing: they are switched off for this transaction where
        the role may (a superuser's `session_replication_role`), and stay on elsewhere."""
        self.checks_off = True
        # A savepoint of the session's own transaction, so a refusal changes nothing.
        await connection.execute("SAVEPOINT demo_copy")
        try:
            await connection.execute("SET LOCAL session_replication_role = replica")
        except asyncpg.InsufficientPrivilegeError:
            await connection.execute("ROLLBACK TO SAVEPOINT demo_copy")
        await connection.execute("RELEASE SAVEPOINT demo_copy")

    async def copy_location(
        self, spec: DemoSpec, location: int, result: LoadResult, progress: Progress | None
    ) -> None:
        """The location's resources, then its patients' chunks from worker processes."""
        for entity, rows in resources(spec, location):
            if rows:
                await self.write(entity, rows)
                _count(result, progress, entity, len(rows))
        context = ChunkContext(self.tenant_id, self.location_id, self.now, self.ids)
        numbers = deque(range(chunk_count(spec, location)))
        # Spawned, not forked: this process has an event loop, connections and maybe a
        # progress bar's thread, none of which a fork should copy.
        spawn = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(max_workers=GENERATOR_PROCESSES, mp_context=spawn) as pool:
            pending: deque[asyncio.Future[list[EncodedRows]]] = deque()
            try:
                while numbers or pending:
                    # Chunks in flight: one being written plus one per worker.
                    while numbers and len(pending) <= GENERATOR_PROCESSES:
                        work = pool.submit(encode_chunk, spec, location, numbers.popleft(), context)
                        pending.append(asyncio.wrap_future(work, loop=loop))
                    for encoded in await pending.popleft():
                        await self.write_text(encoded)
                        _count(result, progress, encoded.entity, encoded.rows)
            finally:
                for waiting in pending:
                    waiting.cancel()

    async def write_text(self, encoded: EncodedRows) -> None:
        """COPY an encoded chunk of one entity (copy_text.py) and count the batch."""
        connection = await self._connection()
        spec = ENTITIES[encoded.entity]
        await connection.copy_to_table(
            spec.table_name, source=io.BytesIO(encoded.text), columns=encoded.columns,
            format="text",
        )  # fmt: skip
        await self._record(encoded.entity, encoded.rows)

    async def _connection(self) -> Any:
        if self.checks_off:
            return await ingest_sql.driver_connection(self.session)
        connection = await _begun(self.session)
        await self._skip_reference_triggers(connection)
        return connection

    async def _record(self, entity: str, rows: int) -> None:
        counts = freshness.BatchCounts(
            received=rows, created=rows, updated=0, unchanged=0, deleted=0
        )
        await freshness.record_batch(
            self.session,
            tenant_id=self.tenant_id,
            location_id=self.location_id,
            entity=entity,
            counts=counts,
            watermark=self.now,
            now=self.now,
        )

    def _lookup(self, table: str, external_id: str | None) -> str | None:
        if external_id is None:
            return None
        return self.ids[table][external_id]

    async def write(self, entity: str, rows: list[Row]) -> None:
        spec = ENTITIES[entity]
        ids = new_ids(spec.id_kind, len(rows))
        own = self.ids.setdefault(spec.table_name, {}) if entity in _REFERENCED else {}
        own.update((row["external_id"], i) for row, i in zip(rows, ids, strict=True))
        columns, records = self._records(spec, rows, ids)
        connection = await self._connection()
        await connection.copy_records_to_table(spec.table_name, records=records, columns=columns)
        await self._record(entity, len(rows))

    def _records(
        self, spec: EntitySpec, rows: list[Row], ids: list[str]
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        fields = spec.row_model.model_fields
        plain = [(c, fields[c].get_default(call_default_factory=True)) for c in spec.columns]
        refs = spec.references
        columns = ["tenant_id", "location_id", "id", "external_id", *(c for c, _ in plain)]
        columns += [r.column for r in refs] + ["updated_at", "deleted_at"]
        head = (self.tenant_id, self.location_id)
        tail = (self.now, None)
        records = []
        for row, our_id in zip(rows, ids, strict=True):
            values = [row.get(c, default) for c, default in plain]
            for ref in refs:
                value = row.get(ref.field)
                if ref.many:
                    values.append([self._lookup(ref.table, v) for v in value or []])
                else:
                    values.append(self._lookup(ref.table, value))
            records.append((*head, our_id, row["external_id"], *values, *tail))
        return columns, records
