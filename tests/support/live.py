"""A real uvicorn process serving the app on loopback, for black-box tests (schemathesis,
browsers) that should see exactly what an integrator sees."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from api.core.embedded import free_port
from tests.support.servers import TestServers


@contextmanager
def live_server(servers: TestServers, **env: str) -> Iterator[str]:
    port = free_port()
    environment = (
        os.environ
        | {
            "DATABASE_URL": servers.database_url,
            "REDIS_URL": servers.redis_url,
            "CHAIRFILL_ENV": "test",
            "CHAIRFILL_LOG_LEVEL": "WARNING",
            "CHAIRFILL_RATE_LIMITS__CLIENT_PER_MINUTE": "1000000",
        }
        | env
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=environment,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the live server did not become ready")
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
