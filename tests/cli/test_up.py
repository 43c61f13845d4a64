"""`chairfill up` on the embedded default, as a real process: embedded PostgreSQL and
Redis in a temporary data dir, the API and the workers; SIGINT stops all of it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from api.core.embedded import free_port

READY_TIMEOUT = 90


def start_up(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"CHAIRFILL_LOG_LEVEL": "WARNING", "CHAIRFILL_ENV": "dev"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "api.cli",
                "up",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_ready(process: subprocess.Popen[bytes], base_url: str, log: Path) -> str:
    """Wait for /readyz and the banner; return the banner text."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            ready = httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        output = log.read_text(errors="replace")
        if ready and "Press Ctrl-C to stop." in output:
            return output
        time.sleep(0.5)
    raise AssertionError(f"not ready in {READY_TIMEOUT}s:\n{log.read_text(errors='replace')}")


def servers_of(process: subprocess.Popen[bytes], data_dir: Path) -> list[psutil.Process]:
    """Every process `up` started: its children and the embedded servers (which their
    launchers detach, so they are found by their data dir and Redis port)."""
    parent = psutil.Process(process.pid)
    found = parent.children(recursive=True)
    ports = set()
    for child in found:
        redis_url = child.environ().get("REDIS_URL", "")
        if match := re.search(r":(\d+)/", redis_url):
            ports.add(match.group(1))
    for candidate in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(candidate.info["cmdline"] or [])
        is_ours = str(data_dir) in cmdline or (
            "redis-server" in cmdline and any(re.search(rf":{p}\b", cmdline) for p in ports)
        )
        if is_ours and candidate not in found:
            found.append(candidate)
    return found


def stop_and_check(process: subprocess.Popen[bytes], started: list[psutil.Process]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    _, alive = psutil.wait_procs(started, timeout=10)
    assert alive == [], [p.info for p in alive]


@pytest.mark.slow
def test_up_on_the_embedded_default_serves_then_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "up.log"
    process = start_up(data_dir, port, log)
    started: list[psutil.Process] = []
    try:
        banner = wait_ready(process, base_url, log)
        started = servers_of(process, data_dir)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        assert "postgres" in names and "redis-server" in names and "workers" in names

        client_id = re.search(r"client_id\s+(cli_\S+)", banner).group(1)
        secret = re.search(r"client_secret\s+(cfcs_\S+)", banner).group(1)
        token = re.search(r"Bearer (cfat_[\w-]+)", banner).group(1)
        me = httpx.get(f"{base_url}/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["tenant"]["name"] == "Demo Dental"
        assert (data_dir / "demo-client.json").stat().st_mode & 0o777 == 0o600
        for url in (f"{base_url}/docs", f"{base_url}/graphql", f"{base_url}/oauth/token"):
            assert url in banner
    finally:
        if started:
            stop_and_check(process, started)
        elif process.poll() is None:
            process.kill()

    # A second run reuses the data dir and the demo client (same id, same secret).
    process = start_up(data_dir, port, log)
    try:
        banner = wait_ready(process, base_url, log)
        started = servers_of(process, data_dir)
        assert f"client_id      {client_id}" in banner
        assert f"client_secret  {secret}" in banner
    finally:
        stop_and_check(process, started)
