from __future__ import annotations

import json
import uuid

import pytest

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.errors import ValidationProblem
from api.practice import csv_import

PATIENTS_CSV = (
    "Patient ID,First Name,Last Name,DOB,Cell,E-mail,Texts OK\n"
    "1001,Ana,Rivera,1985-04-12,(512) 555-0134,Ana.Rivera@Example.COM,yes\n"
    "1002,Tom,Rivera,1983-01-30,,tom@example.com,no\n"
)
PATIENT_MAPPING = {
    "external_id": "Patient ID",
    "first_name": "First Name",
    "last_name": "Last Name",
    "birthdate": "DOB",
    "mobile": "Cell",
    "email": "E-mail",
    "sms_consent": "Texts OK",
}


async def post_csv(client, practice, content: str, mapping, entity="patients", key=None):
    headers = practice.headers | {"Idempotency-Key": key or str(uuid.uuid4())}
    return await client.post(
        f"/v1/sync/locations/{practice.locations[0].id}/imports/csv",
        params={"entity": entity},
        files={"file": ("export.csv", content.encode(), "text/csv")},
        data={"mapping": json.dumps(mapping)},
        headers=headers,
    )


async def test_patients_csv_is_imported_with_normalised_contacts(client, practice):
    response = await post_csv(client, practice, PATIENTS_CSV, PATIENT_MAPPING)
    assert response.status_code == 200, response.text
    assert response.json() | {"data_as_of": None} == {
        "entity": "patients",
        "location_id": practice.locations[0].id,
        "rows": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "data_as_of": None,
    }
    data = (await client.get("/v1/patients", headers=practice.headers)).json()["data"]
    by_id = {p["external_id"]: p for p in data}
    assert (by_id["1001"]["mobile"], by_id["1001"]["email"]) == (
        "+15125550134",
        "Ana.Rivera@example.com",
    )
    assert by_id["1001"]["sms_consent"] is True
    assert by_id["1002"]["mobile"] is None


async def test_errors_name_the_csv_row_and_column_and_nothing_is_written(client, practice):
    bad = PATIENTS_CSV + "1003,Wei,Chen,1990-13-01,12,not-an-email,maybe\n1004,,Park,,,,\n"
    response = await post_csv(client, practice, bad, PATIENT_MAPPING)
    assert response.status_code == 422, response.text
    assert "nothing was imported" in response.json()["detail"]
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == [
        "row 4: Cell",
        "row 4: DOB",
        "row 4: E-mail",
        "row 4: Texts OK",
        "row 5: First Name",
    ]
    data = (await client.get("/v1/patients", headers=practice.headers)).json()["data"]
    assert data == []


async def test_recalls_refer_to_imported_patients_by_row(client, practice):
    assert (await post_csv(client, practice, PATIENTS_CSV, PATIENT_MAPPING)).status_code == 200
    recalls = (
        "Recall,Patient,Type,Months,Due\nr1,1001,prophy,6,2026-12-01\nr2,9999,perio,3,2026-12-15\n"
    )
    mapping = {
        "external_id": "Recall",
        "patient_external_id": "Patient",
        "recall_type": "Type",
        "interval_months": "Months",
        "due_date": "Due",
    }
    response = await post_csv(client, practice, recalls, mapping, entity="recalls")
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["row 3: Patient"]
    fixed = recalls.replace("9999", "1002")
    response = await post_csv(client, practice, fixed, mapping, entity="recalls")
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 2


async def test_mapping_must_fit_the_csv(client, practice):
    mapping = PATIENT_MAPPING | {"favourite_color": "Color", "last_name": "Surname"}
    response = await post_csv(client, practice, PATIENTS_CSV, mapping)
    assert response.status_code == 422
    assert sorted(e["field"] for e in response.json()["errors"]) == [
        "mapping.favourite_color",
        "mapping.last_name",
    ]
    response = await post_csv(client, practice, PATIENTS_CSV, {"first_name": "First Name"})
    assert {"mapping.external_id", "mapping.last_name"} <= {
        e["field"] for e in response.json()["errors"]
    }


async def test_idempotency_key_is_required_and_replays(client, practice):
    response = await client.post(
        f"/v1/sync/locations/{practice.locations[0].id}/imports/csv",
        files={"file": ("export.csv", PATIENTS_CSV.encode(), "text/csv")},
        data={"mapping": json.dumps(PATIENT_MAPPING)},
        headers=practice.headers,
    )
    assert response.status_code == 400, response.text
    # The same bytes again (a multipart body with the same boundary) replay the response.
    boundary = "chairfill-test-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="mapping"\r\n\r\n'
        f"{json.dumps(PATIENT_MAPPING)}\r\n--{boundary}\r\nContent-Disposition: form-data; "
        f'name="file"; filename="export.csv"\r\nContent-Type: text/csv\r\n\r\n'
        f"{PATIENTS_CSV}\r\n--{boundary}--\r\n"
    ).encode()
    headers = practice.headers | {
        "Idempotency-Key": "csv-1",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    url = f"/v1/sync/locations/{practice.locations[0].id}/imports/csv?entity=patients"
    first = await client.post(url, content=body, headers=headers)
    again = await client.post(url, content=body, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()


@pytest.mark.scopes("patients:read")
async def test_the_pms_sync_scope_is_needed(client, practice):
    response = await post_csv(client, practice, PATIENTS_CSV, PATIENT_MAPPING)
    assert response.status_code == 403


async def test_rows_are_numbered_across_chunks(sessions, practice, monkeypatch):
    # Chunks of two rows: a duplicate across chunks and an unknown patient in the second
    # chunk still name their CSV rows.
    monkeypatch.setattr(csv_import.ingest, "MAX_ROWS", 2)
    tenant, location = practice.tenant.id, practice.locations[0].id

    async def run(entity, content, mapping):
        async with unit_of_work(sessions, tenant) as session:
            return await csv_import.import_csv(
                session,
                tenant_id=tenant,
                location_id=location,
                entity=entity,
                content=content.encode(),
                mapping=mapping,
                now=utcnow(),
            )

    with pytest.raises(ValidationProblem) as duplicate:
        await run("patients", PATIENTS_CSV + "1001,Ana,Again,1985-04-12,,,\n", PATIENT_MAPPING)
    assert [(e.field, e.message) for e in duplicate.value.errors] == [
        ("row 4: Patient ID", "duplicate '1001': also row 2")
    ]
    assert (await run("patients", PATIENTS_CSV, PATIENT_MAPPING)).created == 2
    recalls = "Recall,Patient,Type\nr1,1001,prophy\nr2,1002,perio\nr3,4242,prophy\n"
    mapping = {"external_id": "Recall", "patient_external_id": "Patient", "recall_type": "Type"}
    with pytest.raises(ValidationProblem) as unknown:
        await run("recalls", recalls, mapping)
    assert [e.field for e in unknown.value.errors] == ["row 4: Patient"]


async def test_a_missing_file_or_mapping_is_named(client, practice):
    url = f"/v1/sync/locations/{practice.locations[0].id}/imports/csv"
    headers = practice.headers | {"Idempotency-Key": "csv-missing"}
    response = await client.post(
        url, data={"mapping": json.dumps(PATIENT_MAPPING)}, headers=headers
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["file"]
    response = await client.post(
        url,
        files={"file": ("export.csv", PATIENTS_CSV.encode(), "text/csv")},
        data={"mapping": "[1, 2]"},
        headers=practice.headers | {"Idempotency-Key": "csv-bad-mapping"},
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["mapping"]
