"""Request ids, one JSON access-log line per request, and Prometheus metrics labelled by
route template."""

from __future__ import annotations

import io
import json
import re

import pytest

from api.core.logging import configure_logging, log_handler


@pytest.fixture
def log_lines():
    """The configured JSON handler, pointed at a buffer at INFO for one test."""
    configure_logging("INFO", json=True)
    buffer = io.StringIO()
    handler = log_handler()
    assert handler is not None
    handler.setStream(buffer)  # type: ignore[attr-defined]

    def lines() -> list[dict]:
        return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]

    yield lines
    configure_logging("WARNING", json=True)


async def test_sane_incoming_request_id_is_echoed(core_client, practice):
    incoming = "01J9ZP6Q4X-trace.7:abc"
    response = await core_client.get(
        "/v1/me", headers=practice.headers | {"X-Request-Id": incoming}
    )
    assert response.headers["x-request-id"] == incoming


@pytest.mark.parametrize(
    "incoming", ["has spaces", "x" * 129, 'quote"inject', "", "\u00fcn\u00ef".encode("latin-1")]
)
async def test_other_request_ids_are_replaced(core_client, incoming):
    response = await core_client.get("/healthz", headers={"X-Request-Id": incoming})
    generated = response.headers["x-request-id"]
    assert generated != incoming and re.fullmatch(r"[0-9a-f]{32}", generated)


async def test_request_id_is_generated_and_in_problems(core_client):
    response = await core_client.get("/v1/me")
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert response.json()["request_id"] == response.headers["x-request-id"]


async def test_one_json_access_log_line_per_request(core_client, practice, log_lines):
    location = practice.locations[0]
    response = await core_client.get(
        f"/v1/locations/{location.id}", headers=practice.headers | {"X-Request-Id": "req-log-1"}
    )
    assert response.status_code == 200
    access = [line for line in log_lines() if line.get("logger") == "chairfill.access"]
    assert len(access) == 1
    line = access[0]
    assert line["event"] == "request" and line["level"] == "info"
    assert line["request_id"] == "req-log-1"
    assert line["route"] == "/v1/locations/{location_id}"
    assert line["path"] == f"/v1/locations/{location.id}"
    assert line["status"] == 200 and line["method"] == "GET"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["tenant_id"] == practice.tenant.id
    assert line["timestamp"].endswith("Z")


async def test_unexpected_error_is_logged_with_traceback_as_json(core_client, practice, log_lines):
    await core_client.get("/v1/_test/boom", headers=practice.headers | {"X-Request-Id": "req-e"})
    errors = [line for line in log_lines() if line["event"] == "unhandled_error"]
    assert len(errors) == 1
    assert errors[0]["request_id"] == "req-e" and errors[0]["level"] == "error"
    assert "RuntimeError: secret internals" in errors[0]["exception"]
    access = [line for line in log_lines() if line["event"] == "request"]
    assert [(a["status"], a["route"]) for a in access] == [(500, "/v1/_test/boom")]


async def test_metrics_use_route_templates(core_client, practice):
    location = practice.locations[0]
    assert (
        await core_client.get(f"/v1/locations/{location.id}", headers=practice.headers)
    ).status_code == 200
    assert (await core_client.get("/v1/no/such/path/here")).status_code == 404
    text = (await core_client.get("/metrics")).text
    template = 'route="/v1/locations/{location_id}"'
    count = re.search(
        r"chairfill_http_request_duration_seconds_count\{method=\"GET\","
        + re.escape(template)
        + r"\} ([0-9.]+)",
        text,
    )
    assert count and float(count.group(1)) >= 1
    assert re.search(
        r'chairfill_http_responses_total\{method="GET",'
        + re.escape(template)
        + r',status="200"\} [1-9]',
        text,
    )
    assert re.search(r'chairfill_http_responses_total\{[^}]*route="unmatched",status="404"', text)
    assert location.id not in text and "/v1/no/such" not in text
