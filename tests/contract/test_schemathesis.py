"""Schemathesis over the whole OpenAPI document, against a real server process:
no 5xx for any generated input, and every response matches the documented schema,
status codes and content types.

(Driven through schemathesis' Python API rather than its pytest plugin, which does not
yet run under the pytest version we use.)"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.live import live_server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live_base_url(servers):
    with live_server(servers) as base_url:
        yield base_url


def _operations(base_url: str):
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_every_operation_conforms_to_its_contract(live_base_url, practice):
    headers = {"Authorization": f"Bearer {practice.token}"}
    operations = _operations(live_base_url)
    assert operations, "the schema lists no operations"
    calls: dict[str, int] = {}
    for operation in operations:
        _exercise(operation, headers, calls)
    # Every operation was really exercised.
    assert set(calls) == {op.label for op in operations}, calls


def _exercise(operation, headers: dict[str, str], calls: dict[str, int]) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def conforms(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)
        calls[operation.label] = calls.get(operation.label, 0) + 1

    conforms()
