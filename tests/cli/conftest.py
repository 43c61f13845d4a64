"""Run `chairfill` commands in-process (typer's CliRunner) against the test database."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from api.cli import app
from tests.support.servers import TestServers


@pytest.fixture
def chairfill(servers: TestServers) -> Callable[..., Result]:
    runner = CliRunner()

    def _run(*args: str, input: str | None = None) -> Result:
        env = {"DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url}
        return runner.invoke(app, list(args), env=env, input=input)

    return _run


@pytest.fixture
def chairfill_json(chairfill: Callable[..., Result]) -> Callable[..., dict[str, Any]]:
    """Run a command with --json; it must succeed and print exactly one JSON object."""

    def _run(*args: str, input: str | None = None) -> dict[str, Any]:
        result = chairfill(*args, "--json", input=input)
        assert result.exit_code == 0, result.output
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 1, result.stdout
        payload = json.loads(lines[0])
        assert isinstance(payload, dict)
        return payload

    return _run
