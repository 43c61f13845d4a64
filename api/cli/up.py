"""`chairfill up`: everything on one machine in one command.

Without DATABASE_URL / REDIS_URL it starts the embedded PostgreSQL and Redis in the data
dir (reused across runs), migrates, makes sure the demo practice exists, then runs the API
(uvicorn) and the workers (all four queues) as child processes. SIGINT (Ctrl-C) or
SIGTERM stops the children first, then the embedded servers, so nothing is left behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

import httpx
import typer
from sqlalchemy.ext.asyncio import async_sessionmaker

from api.cli.common import data_dir as resolve_data_dir
from api.cli.common import load_settings
from api.cli.demo import DEMO_FILE, DEMO_TENANT, DemoPractice, ensure_demo_practice
from api.cli.practice_data import ensure_up_demo_data
from api.core.db import new_engine, unit_of_work
from api.core.embedded import EmbeddedServers
from api.core.migrate import upgrade
from api.core.settings import OAuthSettings

READY_TIMEOUT_SECONDS = 90
STOP_TIMEOUT_SECONDS = 25


class _Stop(Exception):
    """SIGINT or SIGTERM, turned into an exception so one clean-up path runs."""


def _on_stop_signal(_signum: int, _frame: FrameType | None) -> None:
    raise _Stop


async def _demo(database_url: str, directory: Path, oauth: OAuthSettings) -> DemoPractice:
    engine = new_engine(database_url)
    try:
        async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
            return await ensure_demo_practice(session, directory, oauth)
    finally:
        await engine.dispose()


def _wait_ready(base_url: str, children: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for name, child in zip(("the API", "the workers"), children, strict=True):
            if child.poll() is not None:
                raise RuntimeError(f"{name} exited with code {child.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the API did not answer {base_url}/readyz within {READY_TIMEOUT_SECONDS}s")


def _stop_children(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _banner(base_url: str, directory: Path, demo: DemoPractice) -> str:
    c = demo.credentials
    return f"""
Chairfill is running.
  API       {base_url}
  Docs      {base_url}/docs
  GraphQL   {base_url}/graphql

Demo practice "{DEMO_TENANT}" (tenant {c.tenant_id}, location {c.location_id})
  client_id      {c.client_id}
  client_secret  {c.client_secret}
  The secret is kept in {directory / DEMO_FILE} (mode 0600) so it can be shown again;
  the database stores only its hash.

Get a token:
  curl -s -u '{c.client_id}:{c.client_secret}' -d grant_type=client_credentials \\
    {base_url}/oauth/token

Or use this one (valid one hour):
  curl -s -H 'Authorization: Bearer {demo.access_token}' {base_url}/v1/me

Press Ctrl-C to stop.
"""


def up(
    demo: bool = typer.Option(False, "--demo", help="Load a generated demo practice."),
    port: int = typer.Option(8000, help="API port."),
    host: str = typer.Option("127.0.0.1", help="API bind address."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Embedded PostgreSQL/Redis data (default .chairfill/)."
    ),
) -> None:
    """Run everything: embedded servers if none are configured, API and workers."""
    settings = load_settings()
    directory = resolve_data_dir(settings, data_dir)
    embedded: EmbeddedServers | None = None
    children: list[subprocess.Popen[bytes]] = []
    # Installed explicitly: a shell starting us in the background leaves SIGINT ignored.
    previous = {sig: signal.signal(sig, _on_stop_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        database_url, redis_url = settings.database_url, settings.redis_url
        if not database_url or not redis_url:
            typer.echo(f"Starting embedded PostgreSQL and Redis in {directory} ...")
            embedded = EmbeddedServers(directory).start(
                postgres=not database_url, redis=not redis_url
            )
            database_url = database_url or embedded.database_url
            redis_url = redis_url or embedded.redis_url
        typer.echo("Migrating the database ...")
        upgrade(database_url)
        practice = asyncio.run(_demo(database_url, directory, settings.oauth))
        if demo:
            # Only the first time: a demo location that has patients is left as it is.
            c = practice.credentials
            loaded = asyncio.run(ensure_up_demo_data(database_url, c.tenant_id, c.location_id))
            typer.echo(
                f"Loaded {loaded:,} demo patients." if loaded else "Demo data already loaded."
            )
        environment = os.environ | {"DATABASE_URL": database_url, "REDIS_URL": redis_url}
        python = sys.executable
        api_command = [python, "-m", "uvicorn", "api.main:create_app", "--factory"]
        api_command += ["--host", host, "--port", str(port)]
        # Own sessions: a Ctrl-C reaches only this process, which stops them in order.
        # The arguments are our own interpreter and modules, not outside input.
        for command in (api_command, [python, "-m", "workers"]):
            children.append(
                subprocess.Popen(command, env=environment, start_new_session=True)  # noqa: S603
            )
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        base_url = f"http://{shown_host}:{port}"
        _wait_ready(base_url, children)
        typer.echo(_banner(base_url, directory, practice), nl=False)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        typer.secho("A child process stopped; shutting down.", err=True, fg=typer.colors.RED)
        code = 1
    except (KeyboardInterrupt, _Stop):
        typer.echo("\nStopping ...")
    except Exception as exc:
        typer.secho(f"Error: {exc}", err=True, fg=typer.colors.RED)
        code = 1
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave servers running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_children(children)
        if embedded is not None:
            try:
                embedded.stop()
            except Exception as exc:
                typer.secho(f"Stopping the embedded servers: {exc}", err=True)
                code = code or 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code:
        raise typer.Exit(code)
    typer.echo("Stopped.")
