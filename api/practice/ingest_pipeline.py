"""The rows of one sync batch, validated and written as a pipeline: while PostgreSQL
inserts chunk n, Python validates the chunks after it and builds chunk n+1's records
(`_write_all`), so the two halves of the work (12-14 µs of Python a row for a patient, 10-12
of database, bench/RESULTS.md 2026-12-07) overlap on a two-core machine instead of adding
up. The database is the slower half: whatever it need not wait for (the savepoint and
staging table, the location check, the row ids) is done while the first chunk is
validated.

Everything is written inside a savepoint, so a bad row found in a late chunk (or a
statement that fails) undoes the chunks already written: the batch stays all or nothing
whoever owns the transaction. Errors are collected in the same groups and order as a
validate-everything-first pass would give them (see `RowsOutcome.problems`).

References are resolved per chunk with one look-up for all referenced tables (probes of
their unique keys, ingest_sql.py), except where the answer is known here: a row of this
batch validated so far (a self-reference such as a guarantor gets the id assigned to that
row; one further on is set afterwards, `later`), a row an earlier chunk's look-up found
(`_references_found`: rows keep their ids), or a location whose rows this transaction
wrote all of (`written_by_transaction`: a first load).

A batch whose first chunk holds no row the mirror knows is taken for the next part of a
first load sent over several requests (a bridge's initial sync): its later chunks' own
rows are presumed new and not looked up (the probes were 4 µs of the database's ~21 a
row, all misses). The unique key still checks every insert: should one of them exist after
all, the insert fails, the batch is undone, and `sync_batch` writes it again with every
chunk looked up (`presume_new=False`). A bridge's incremental batch, mostly known rows,
is looked up throughout from its first chunk on."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from api.core.errors import FieldError
from api.practice import ingest_sql
from api.practice.batch_ids import new_ids
from api.practice.ingest_rows import NO_NUL
from api.practice.ingest_specs import ENTITIES, EntitySpec, Reference

# Rows per upsert statement: small enough that the first chunk's validation and the last
# chunk's write (the parts that cannot overlap) are a small share of a 10,000-row batch.
CHUNK_ROWS = 2_000
# The first chunk is smaller: nothing is being written while it is validated.
FIRST_CHUNK_ROWS = 500
# Rows validated between two turns of the event loop, so the chunk being written gets its
# next statement sent promptly (the database is the slower half now: 50 rows, ~0.35 ms,
# read 51,831-55,882 rows/s of first load where 100 read 49,820-55,347, alternated).
VALIDATE_SLICE = 50


def error_path(loc: tuple[int | str, ...], offset: int = 0) -> str:
    index, *rest = loc
    path = f"rows[{int(index) + offset}]"
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


# Tables other entities' rows refer to (by external id, resolved to our ids).
REFERENCED = frozenset(r.table for spec in ENTITIES.values() for r in spec.references)

_ADAPTERS: dict[str, TypeAdapter[list[Any]]] = {}


def _adapter(spec: EntitySpec) -> TypeAdapter[list[Any]]:
    if spec.name not in _ADAPTERS:
        _ADAPTERS[spec.name] = TypeAdapter(list[spec.row_model])  # type: ignore[name-defined]
    return _ADAPTERS[spec.name]


def validate_rows(
    spec: EntitySpec,
    rows: Sequence[Any],
    region: str,
    errors: list[FieldError],
    offset: int = 0,
) -> list[BaseModel]:
    """Rows at once (one pydantic call); errors name the row by its index in the batch
    (`offset` is the index of rows[0]). Any error -> no rows."""
    try:
        return _adapter(spec).validate_python(rows, context={"region": region})
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            # A model-level rule (schedule shape) has no field: the row itself is named.
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "model_type" and len(err["loc"]) == 1:
                message = "Input should be an object: one row of fields"  # not the class name
            elif err["type"] == "string_pattern_mismatch" and err["ctx"]["pattern"] == NO_NUL:
                message = "Text must not contain a NUL character (U+0000)"
            errors.append(FieldError(field=error_path(err["loc"], offset), message=message))
        return []


@dataclass
class RowsOutcome:
    created: int = 0
    updated: int = 0
    # Our ids of the patients the rows refer to (the appointments' cadence exit hook).
    patient_ids: dict[str, str] = field(default_factory=dict)
    invalid: list[FieldError] = field(default_factory=list)  # pydantic, in row order
    duplicates: list[FieldError] = field(default_factory=list)
    # (reference position, external id, row index) of references to rows that don't exist.
    missing: list[tuple[int, str, int]] = field(default_factory=list)
    external_ids: dict[str, int] = field(default_factory=dict)  # -> first row index

    def problems(self, spec: EntitySpec, deletes: Sequence[str]) -> list[FieldError]:
        """The batch's row errors, as validating everything before writing would list
        them: validation errors; if none, duplicate keys and delete conflicts; if none,
        unknown references (by reference, then external id, then row)."""
        if self.invalid:
            return self.invalid
        key_errors = list(self.duplicates)
        for j, external_id in enumerate(deletes):
            if external_id in self.external_ids:
                key_errors.append(
                    FieldError(
                        field=f"deletes[{j}]",
                        message=f"{external_id!r} is both upserted "
                        f"(rows[{self.external_ids[external_id]}]) and deleted",
                    )
                )
        if key_errors:
            return key_errors
        first: dict[tuple[int, str], int] = {}
        for ref_index, external_id, row in self.missing:
            key = (ref_index, external_id)
            first[key] = min(row, first.get(key, row))
        ordered = sorted(self.missing, key=lambda m: (m[0], first[(m[0], m[1])], m[2]))
        refs = spec.references
        return [
            FieldError(
                field=f"rows[{row}].{refs[ref_index].field}",
                message=f"no {refs[ref_index].table} row with external id {external_id!r} "
                f"at this location; push {refs[ref_index].table} first",
            )
            for ref_index, external_id, row in ordered
        ]


@dataclass(frozen=True)
class _LookedUp:
    """A validated chunk and what its look-up found."""

    rows: list[BaseModel]
    start: int  # index in the batch of rows[0]
    external_ids: list[str]
    values: list[list[Any]]  # per reference, each row's external id(s)
    existing: dict[str, str]  # our ids of the chunk's rows already in the mirror
    found: list[dict[str, str]]  # per reference, our ids of the rows named


class RowsPipeline:
    """Validates and writes the rows of one batch (see the module docstring)."""

    def __init__(
        self,
        session: AsyncSession,
        spec: EntitySpec,
        *,
        tenant_id: str,
        location_id: str,
        now: datetime,
        region: str,
        write: bool,
        presume_new: bool = True,
    ) -> None:
        self.session, self.spec = session, spec
        self.tenant_id, self.location_id, self.now, self.region = (
            tenant_id, location_id, now, region,
        )  # fmt: skip
        # False once anything is wrong with the batch: later chunks are still validated
        # (every error is reported) but nothing more is written.
        self.writing = write
        # References are checked while the rows are valid (only then are unknown
        # references reported), also after an unknown one stopped the writing.
        self.checking = write
        self.chunk_rows = CHUNK_ROWS
        self.first_chunk_rows = FIRST_CHUNK_ROWS
        self.outcome = RowsOutcome()
        self._row_ids: list[str] = []
        # Per reference, our ids of the rows its look-ups found so far (`_look_up`).
        self._references_found: list[dict[str, str]] = [{} for _ in spec.references]
        self._savepoint = False  # the batch's savepoint (and its staging table) is set
        self._inserts: list[asyncio.Task[None]] = []
        # (reference position, reference, row index, row's external id, referenced id)
        self._later: list[tuple[int, Reference, int, str, str]] = []
        self._columns: Callable[[BaseModel], Any] = _getter(spec.columns)
        # Whether the location had no row of this entity when this transaction first
        # synced it (a first load): then every row there is one this transaction wrote,
        # and `_written` maps their external ids to our ids, so the chunks' look-ups of
        # their own rows (and of references to such a table) are answered here, not by
        # probes. Nothing else writes the bridge's external ids while the transaction
        # holds the entity's lock (ingest_sql's docstring).
        self.location_was_empty = False
        # Whether the chunks after the first may be presumed new when the first holds no
        # known row (module docstring), and whether they were: then an insert refused by
        # the unique key (ingest_sql.ExternalIdTaken) means the batch must be written
        # again without presuming.
        self.presume_new = presume_new
        self.presumed_new = False
        self._written: dict[str, str | None] | None = None
        self._first_loads: dict[tuple[str, str], dict[str, str | None]] = {}

    async def run(self, rows: Sequence[Mapping[str, Any]]) -> RowsOutcome:
        """Validate `rows` and, while the batch is clean, write them. The caller then
        either `keep`s what was written or, when the outcome has problems, `undo`es it."""
        # Validated chunks go to the writer, which works a chunk behind (`_write_all`).
        queue: asyncio.Queue[tuple[list[BaseModel], int] | None] = asyncio.Queue()
        writer = asyncio.create_task(self._write_all(queue, has_rows=bool(rows)))
        try:
            for start, end in chunk_bounds(len(rows), self.first_chunk_rows, self.chunk_rows):
                chunk = await self._validate(rows[start:end], start)
                # The ids the chunk's rows get if new (a row of a later chunk has none
                # yet: `_self_reference`).
                self._row_ids += new_ids(self.spec.id_kind, end - start)
                if writer.done():
                    break  # it failed: its error is raised below
                if self.checking and chunk:
                    queue.put_nowait((chunk, start))
            queue.put_nowait(None)
            await writer
            await self._resolve_later()
        except BaseException as exc:
            writer.cancel()
            # Retrieved, so a writer's own error is not lost (nor logged as unretrieved).
            await asyncio.gather(writer, return_exceptions=True)
            if isinstance(exc, Exception) and self._savepoint:
                # What was written is undone here, whoever owns the transaction and
                # whatever it does with this error. (Not when cancelled: the caller's
                # transaction ends then; and a dead connection keeps the first error.)
                with suppress(Exception):
                    await self.undo()
            raise
        return self.outcome

    async def keep(self) -> None:
        if self._written is not None and self.writing:
            if self.spec.table_name in REFERENCED:
                row_ids = self._row_ids
                self._written.update(
                    (external_id, row_ids[i])
                    for external_id, i in self.outcome.external_ids.items()
                )
            else:
                self._written.update(dict.fromkeys(self.outcome.external_ids))
        if self._savepoint:
            await ingest_sql.drop_stage_and_release(self.session, self.spec)

    @property
    def may_retry(self) -> bool:
        """After `ExternalIdTaken`: the presumption was the cause and what was written is
        undone, so the batch may run again, looked up, in the same transaction."""
        return self.presumed_new and not self._savepoint

    async def undo(self) -> None:
        if self._savepoint:
            await ingest_sql.rollback_to_savepoint(self.session)
            self._savepoint = False

    async def _validate(self, rows: Sequence[Any], start: int) -> list[BaseModel]:
        valid: list[BaseModel] = []
        for s in range(0, len(rows), VALIDATE_SLICE):
            piece = validate_rows(
                self.spec, rows[s : s + VALIDATE_SLICE], self.region, self.outcome.invalid,
                start + s,
            )  # fmt: skip
            valid.extend(piece)
            await asyncio.sleep(0)
        if self.outcome.invalid:
            self.writing = self.checking = False
            return []
        seen = self.outcome.external_ids
        for i, row in enumerate(valid, start):
            external_id = row.external_id  # type: ignore[attr-defined]
            if external_id in seen:
                self.outcome.duplicates.append(
                    FieldError(
                        field=f"rows[{i}].external_id",
                        message=f"duplicate external id {external_id!r}: also "
                        f"rows[{seen[external_id]}]",
                    )
                )
                self.writing = self.checking = False
            else:
                seen[external_id] = i
        return valid

    async def _write_all(
        self, queue: asyncio.Queue[tuple[list[BaseModel], int] | None], *, has_rows: bool
    ) -> None:
        """Look up, resolve and write the chunks `queue` brings (None: no more), keeping
        PostgreSQL busy: chunk n+1's look-up is sent before chunk n's insert when n+1 is
        already validated, so that Python resolves n+1's references and builds its records
        while the database inserts n. (n+1's look-up cannot be changed by n's insert: their
        external ids differ, and a guarantor in an earlier chunk is not looked up.)"""
        try:
            if has_rows:
                # While the first chunk is validated (the database has nothing else to do).
                await self._find_first_load()
                if self.writing:
                    await self._begin()
            await self._write_chunks(queue)
        finally:
            # Cancelled (the batch failed elsewhere): the connection is only free for the
            # rollback once no statement of ours is running on it.
            for task in self._inserts:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*self._inserts, return_exceptions=True)

    async def _write_chunks(self, queue: asyncio.Queue[tuple[list[BaseModel], int] | None]) -> None:
        prepared: list[tuple[Any, ...]] | None = None  # records of a chunk not yet sent
        ended = False
        while not ended or prepared is not None:
            item: tuple[list[BaseModel], int] | None = None
            if not ended and (prepared is None or not queue.empty()):
                item = await queue.get()
                ended = item is None
            looked_up: _LookedUp | None = None
            if item is not None and self.checking:
                looked_up = await self._look_up(*item)
            inserting: asyncio.Task[None] | None = None
            if prepared is not None and self.writing:
                await self._stage(prepared)
                chunk = prepared[0][0]  # a record starts with its chunk (stage_columns)
                inserting = asyncio.create_task(self._insert(chunk))
                self._inserts.append(inserting)
                await asyncio.sleep(0)  # sends the statement
            prepared = None
            if looked_up is not None:
                prepared = self._records(looked_up)
            if inserting is not None:
                await inserting

    def _records(self, chunk: _LookedUp) -> list[tuple[Any, ...]] | None:
        """The chunk's staging records, references resolved (None: nothing to write)."""
        refs = self._resolved(chunk)
        if not self.writing:
            return None
        columns = self._columns
        start, external_ids, existing = chunk.start, chunk.external_ids, chunk.existing
        # A row already in the mirror keeps its id; a new one gets the id given to it.
        for i, external_id in enumerate(external_ids, start):
            if external_id in existing:
                self._row_ids[i] = existing[external_id]
        ids = self._row_ids[start : start + len(external_ids)]
        new = [external_id not in existing for external_id in external_ids]
        # (The lists are all the chunk's length; `repeat` stands in when nothing refers.)
        references = zip(*refs, strict=True) if refs else repeat(())
        return [
            (start, is_new, our_id, external_id, *columns(row), *resolved)
            for is_new, our_id, external_id, row, resolved in zip(
                new, ids, external_ids, chunk.rows, references, strict=False
            )
        ]

    async def _find_first_load(self) -> None:
        if self.checking:
            self._first_loads = first_loads = written_by_transaction(self.session)
            key = (self.spec.table_name, self.location_id)
            if key not in first_loads and not await ingest_sql.location_has_rows(
                self.session, self.spec, self.tenant_id, self.location_id
            ):
                first_loads[key] = {}
            self._written = first_loads.get(key)
            self.location_was_empty = self._written is not None

    async def _begin(self) -> None:
        if not self._savepoint:
            try:
                await ingest_sql.savepoint_and_stage(self.session, self.spec)
            finally:
                # Sent (asyncpg sends before it first waits), so the savepoint may be set
                # even when this failed (the CREATE after it refused) or was cancelled
                # (the answer not read): `undo` must try to go back to it.
                self._savepoint = True

    async def _stage(self, records: list[tuple[Any, ...]]) -> None:
        await self._begin()
        await ingest_sql.stage_records(self.session, self.spec, records)

    async def _insert(self, chunk: int) -> None:
        created, updated = await ingest_sql.write_staged(
            self.session, self.spec, tenant_id=self.tenant_id, location_id=self.location_id,
            now=self.now, chunk=chunk,
        )  # fmt: skip
        self.outcome.created += created
        self.outcome.updated += updated

    async def _look_up(self, chunk: list[BaseModel], start: int) -> _LookedUp:
        """One look-up for the chunk: our ids of its rows already in the mirror, and of
        the rows its references name."""
        refs = self.spec.references
        values = [[getattr(row, ref.field) for row in chunk] for ref in refs]
        external_ids: list[str] = [row.external_id for row in chunk]  # type: ignore[attr-defined]
        asked: list[list[str]] = [external_ids]
        # A self-reference to a row of this chunk or an earlier one needs no look-up: that
        # row's id is known here (`_self_reference`). A household's guarantor usually is.
        # (Only those: a row of a later chunk may be in the mirror, and its id is not
        # known before its own chunk's look-up.)
        if self.presumed_new:
            asked = [[]]
        in_batch, end = self.outcome.external_ids, start + len(chunk)
        for ref, column_values in zip(refs, values, strict=True):
            if ref.many:
                asked.append([e for many in column_values if many for e in many])
            elif ref.is_self(self.spec.table_name):
                asked.append(
                    [v for v in column_values if v is not None and in_batch.get(v, end) >= end]
                )
            else:
                asked.append([v for v in column_values if v is not None])
        # Per table asked (the entity's own, then each reference's): where this transaction
        # wrote all of the location's rows, its map answers and nothing is asked.
        tables = [self.spec.table_name, *(ref.table for ref in refs)]
        maps = [self._first_loads.get((table, self.location_id)) for table in tables]
        # (A row of a table whose map holds no ids is asked for only if it is there.)
        wanted = [
            (table, ids if known is None else [e for e in ids if e in known and not known[e]])
            for table, ids, known in zip(tables, asked, maps, strict=True)
        ]
        # A referenced row an earlier chunk's look-up found keeps its id (rows are never
        # given another), so it is not asked for again: a first load's chunks name the
        # same few providers and operatories over and over.
        caches = self._references_found
        wanted[1:] = [
            (table, [e for e in ids if e not in cache])
            for (table, ids), cache in zip(wanted[1:], caches, strict=True)
        ]
        results = await ingest_sql.lookup_ids(
            self.session, self.tenant_id, self.location_id, wanted
        )
        for k, (ids, known) in enumerate(zip(asked, maps, strict=True)):
            if known is not None:
                results[k] |= {e: our for e in ids if (our := known.get(e))}
        for ids, result, cache in zip(asked[1:], results[1:], caches, strict=True):
            cache.update(result)
            result |= {e: our for e in ids if (our := cache.get(e))}
        existing, *found = results
        if start == 0 and self.presume_new and not existing and not self.location_was_empty:
            self.presumed_new = True
        return _LookedUp(chunk, start, external_ids, values, existing, found)

    def _resolved(self, chunk: _LookedUp) -> list[list[Any]]:
        """Per reference, our id(s) for each row of the chunk (unknown ones recorded)."""
        refs = self.spec.references
        start, values, existing = chunk.start, chunk.values, chunk.existing
        resolved: list[list[Any]] = []
        for ref_index, (ref, known) in enumerate(zip(refs, chunk.found, strict=True)):
            if ref.field == "patient_external_id":
                self.outcome.patient_ids.update(known)
            column: list[Any] = []
            if ref.many:
                for i, many in enumerate(values[ref_index], start):
                    for external_id in many or ():
                        if external_id not in known:
                            self._missing(ref_index, external_id, i)
                    column.append([known.get(e) for e in many or ()])
            elif ref.is_self(self.spec.table_name):
                for i, (value, row) in enumerate(
                    zip(values[ref_index], chunk.rows, strict=True), start
                ):
                    column.append(
                        self._self_reference(ref_index, ref, known, existing, value, i, row)
                    )
            else:
                for i, value in enumerate(values[ref_index], start):
                    if value is None:
                        column.append(None)
                    elif value in known:
                        column.append(known[value])
                    else:
                        self._missing(ref_index, value, i)
                        column.append(None)
            resolved.append(column)
        return resolved

    def _self_reference(
        self,
        ref_index: int,
        ref: Reference,
        known: dict[str, str],
        existing: dict[str, str],
        value: str | None,
        index: int,
        row: BaseModel,
    ) -> str | None:
        """A row already in the table keeps its id; a new one of this batch has the id
        assigned to its row; one not validated yet is looked at after the last chunk.
        (`known`: the look-up's answer for references; `existing`: for this chunk's own
        rows, whose ids `_row_ids` takes only after this; earlier chunks' are there.)"""
        if value is None:
            return None
        if value in known:
            return known[value]
        target = self.outcome.external_ids.get(value)
        if target is not None:
            return existing.get(value, self._row_ids[target])
        self._later.append((ref_index, ref, index, row.external_id, value))  # type: ignore[attr-defined]
        return None

    def _missing(self, ref_index: int, external_id: str, row: int) -> None:
        self.outcome.missing.append((ref_index, external_id, row))
        self.writing = False

    async def _resolve_later(self) -> None:
        """Self-references to rows of a later chunk: set now, or unknown after all."""
        if not self.checking:
            return
        fixes: dict[str, list[tuple[str, str]]] = {}
        for ref_index, ref, index, external_id, target in self._later:
            found = self.outcome.external_ids.get(target)
            if found is None:
                self._missing(ref_index, target, index)
            else:
                fixes.setdefault(ref.column, []).append((external_id, self._row_ids[found]))
        if not self.writing:
            return
        for column, pairs in fixes.items():
            await ingest_sql.set_references(
                self.session, self.spec, column, pairs, tenant_id=self.tenant_id,
                location_id=self.location_id,
            )  # fmt: skip


_WRITTEN = "ingest_written_by_transaction"
_WATCHED = "ingest_written_watched"


def written_by_transaction(
    session: AsyncSession,
) -> dict[tuple[str, str], dict[str, str | None]]:
    """(table, location) -> {external id: our id} of every row of that table at that
    location, for locations that had none when this transaction first synced them: the
    rows of the batches it kept since. Our ids are kept only for tables other rows refer
    to (`REFERENCED`); the others' rows map to None (the look-up of a row sent again asks
    the database for its id), so a first run's millions of procedures cost a set, not a
    map. Dropped with the transaction, and by any rollback the session sees (a savepoint
    of the caller's own: what it undid may be in the map; without the map, look-ups ask
    the database as before)."""
    sync = session.sync_session
    transaction = sync.get_transaction()
    assert transaction is not None, "called inside the batch's transaction"
    if not sync.info.get(_WATCHED):
        event.listen(sync, "after_soft_rollback", _forget_written)
        sync.info[_WATCHED] = True
    found: tuple[object, dict[tuple[str, str], dict[str, str | None]]] | None = sync.info.get(
        _WRITTEN
    )
    if found is None or found[0] is not transaction:
        found = (transaction, {})
        sync.info[_WRITTEN] = found
    return found[1]


def _forget_written(session: Session, previous_transaction: object) -> None:
    session.info.pop(_WRITTEN, None)


def chunk_bounds(total: int, first: int, size: int) -> list[tuple[int, int]]:
    """[start, end) of each chunk: `first` rows, then `size` at a time."""
    bounds = [(0, min(first, total))] if total else []
    bounds += [(start, min(start + size, total)) for start in range(first, total, size)]
    return bounds


def _getter(columns: Sequence[str]) -> Callable[[BaseModel], tuple[Any, ...]]:
    """The row's plain column values as a tuple (one C call, not a getattr each)."""
    if len(columns) == 1:
        single = operator.attrgetter(columns[0])
        return lambda row: (single(row),)
    return operator.attrgetter(*columns)
