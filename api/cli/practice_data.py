"""`chairfill demo` (a generated practice) and `chairfill sync opendental` (one connector
run), plus what `chairfill up --demo` loads the first time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.cli.common import database, fail, load_settings, run_unit_of_work
from api.core.clock import utcnow
from api.core.db import new_engine, unit_of_work
from api.practice.connectors import repository as connector_repository
from api.practice.connectors import service as connectors
from api.practice.demo.generator import DemoSpec
from api.practice.demo.loader import LoadResult, load_practice
from api.practice.repository import location_has_patients
from api.tenancy import repository as tenancy_repository
from api.tenancy import service as tenancy_service
from api.tenancy.schemas import LocationCreate, TenantCreate

UP_DEMO_PATIENTS = 3_750  # about 3,000 of them active
# Up to this size a demo goes through sync_batch; bigger ones are COPYed (loader.py).
SYNC_LOAD_LIMIT = 20_000
DEMO_TIMEZONE = "America/Chicago"

sync = typer.Typer(help="Pull a PMS into the mirror.", no_args_is_help=True)


def _progress(console: Console | None = None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console,
    )


async def load_demo(
    session: AsyncSession,
    tenant_id: str,
    location_ids: list[str],
    spec: DemoSpec,
    progress: Progress,
) -> LoadResult:
    task = progress.add_task("Generating the practice", total=spec.patients, detail="")
    seen: dict[str, int] = {}

    def advance(entity: str, rows: int) -> None:
        seen[entity] = seen.get(entity, 0) + rows
        visits, procedures = seen.get("appointments", 0), seen.get("procedures", 0)
        detail = f"{visits:,} appointments, {procedures:,} procedures"
        progress.update(task, advance=rows if entity == "patients" else 0, detail=detail)

    via: Literal["sync", "copy"] = "copy" if spec.patients > SYNC_LOAD_LIMIT else "sync"
    return await load_practice(
        session, tenant_id=tenant_id, location_ids=location_ids, spec=spec, now=utcnow(),
        via=via, progress=advance,
    )  # fmt: skip


async def ensure_up_demo_data(database_url: str, tenant_id: str, location_id: str) -> int:
    """Load the demo practice's patients unless the location already has some: -> loaded."""
    engine = new_engine(database_url)
    try:
        maker = async_sessionmaker(engine, expire_on_commit=False)
        async with unit_of_work(maker) as session:
            if await location_has_patients(session, tenant_id, location_id):
                return 0
            location = await tenancy_repository.get_location(session, tenant_id, location_id, None)
            zone = ZoneInfo(location.timezone if location else DEMO_TIMEZONE)
            spec = DemoSpec(
                patients=UP_DEMO_PATIENTS, today=dt.datetime.now(zone).date(), timezone=zone.key
            )
            with _progress() as progress:
                result = await load_demo(session, tenant_id, [location_id], spec, progress)
            return result.rows.get("patients", 0)
    finally:
        await engine.dispose()


def demo(
    patients: Annotated[
        int, typer.Option(help="Patients in the practice (all locations).")
    ] = 3_750,
    locations: Annotated[int, typer.Option(help="Locations to spread them over.")] = 1,
    seed: Annotated[int, typer.Option(help="Same seed, same practice.")] = 42,
    tenant: Annotated[
        str | None, typer.Option(help="Load into this tenant (default: a new one).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Embedded servers' data.")
    ] = None,
) -> None:
    """Generate a realistic demo practice (deterministic per seed) and load it."""
    if patients < 1 or locations < 1 or patients < locations:
        fail("--patients and --locations must be positive, with at least one patient per location")
    settings = load_settings()

    async def work(session: AsyncSession) -> tuple[str, list[str], LoadResult]:
        tenant_id = tenant
        if tenant_id is None:
            made = await tenancy_service.create_tenant(
                session, TenantCreate(name=f"Demo Dental (seed {seed})")
            )
            tenant_id = made.id
        elif await tenancy_repository.get_tenant(session, tenant_id) is None:
            fail(f"there is no tenant {tenant_id}")
        existing = await tenancy_repository.all_locations(session, tenant_id, None)
        location_ids = [loc.id for loc in existing[:locations]]
        for n in range(len(location_ids), locations):
            made_location = await tenancy_service.create_location(
                session,
                tenant_id,
                LocationCreate(name=f"Demo Dental #{n + 1}", timezone=DEMO_TIMEZONE),
            )
            location_ids.append(made_location.id)
        for location_id in location_ids:
            if await location_has_patients(session, tenant_id, location_id):
                fail(f"location {location_id} already has patients; use another tenant")
        spec = DemoSpec(patients=patients, locations=locations, seed=seed,
                        today=dt.datetime.now(ZoneInfo(DEMO_TIMEZONE)).date())  # fmt: skip
        with _progress() as progress:
            result = await load_demo(session, tenant_id, location_ids, spec, progress)
        return tenant_id, location_ids, result

    with database(settings, data_dir) as url:
        tenant_id, location_ids, result = run_unit_of_work(url, work)
    table = Table(title=f"Demo practice loaded into tenant {tenant_id}")
    table.add_column("entity")
    table.add_column("rows", justify="right")
    for entity, n in result.rows.items():
        table.add_row(entity, f"{n:,}")
    # At least 100 columns: at a pipe's default 80, names such as "treatment-plans" were cut.
    console = Console()
    Console(width=max(console.width, 100)).print(table)
    typer.echo(f"Locations: {', '.join(location_ids)}")


@sync.command("opendental")
def sync_opendental(
    location: Annotated[str, typer.Option(help="The location id (loc_...).")],
    dsn: Annotated[
        str | None,
        typer.Option(help="mysql://user:password@host:3306/opendental (default: the stored one)."),
    ] = None,
    save: Annotated[
        bool, typer.Option(help="Store the DSN (encrypted) for the scheduled sync.")
    ] = False,
    interval_minutes: Annotated[int, typer.Option(help="Scheduled sync interval.")] = 15,
) -> None:
    """Pull the location's Open Dental database into the mirror once and print the counts."""
    settings = load_settings()

    async def find_tenant(session: AsyncSession) -> str | None:
        return await connector_repository.location_tenant(session, location)

    async def work(session: AsyncSession) -> Any:
        assert tenant_id is not None
        if save:
            if dsn is None:
                fail("--save needs --dsn")
            await connectors.save_opendental_config(
                session, tenant_id=tenant_id, location_id=location, dsn=dsn,
                secret_key=settings.secret_key, interval_minutes=interval_minutes,
            )  # fmt: skip
        with Progress(TextColumn("[bold]{task.description}"), TimeElapsedColumn()) as progress:
            task = progress.add_task("Reading Open Dental", total=None)

            def show(entity: str, counts: Any) -> None:
                progress.update(task, description=f"{entity}: {counts.received:,} rows")

            return await connectors.sync_opendental_location(
                session, tenant_id=tenant_id, location_id=location, now=utcnow(),
                secret_key=settings.secret_key, dsn=dsn, progress=show,
            )  # fmt: skip

    with database(settings) as url:
        tenant_id = run_unit_of_work(url, find_tenant)
        if tenant_id is None:
            fail(f"there is no location {location}")
        try:
            result = run_unit_of_work(url, work, tenant_id)
        except (OSError, ValueError) as exc:
            fail(f"Open Dental: {exc}")
    table = Table(title=f"Open Dental -> {location}")
    for column in ("entity", "received", "created", "updated", "unchanged", "deleted", "skipped"):
        table.add_column(column, justify="left" if column == "entity" else "right")
    for entity, c in result.entities.items():
        table.add_row(
            entity,
            *(
                str(v)
                for v in (c.received, c.created, c.updated, c.unchanged, c.deleted, c.skipped)
            ),
        )
    # At least 100 columns: at a pipe's default 80, names such as "treatment-plans" were cut.
    console = Console()
    Console(width=max(console.width, 100)).print(table)
