"""Front-desk tasks over REST and GraphQL: create, list with filters and cursor pages,
get, update, assignee checks, tenancy and scopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.core.db import unit_of_work
from api.tenancy import service as tenancy_service
from tests.booking.conftest import push, widget_headers


def task_body(location_id: str, **fields):
    return {"kind": "call", "title": "Call about recall", "location_id": location_id} | fields


async def test_create_list_filter_page_and_update(client, practice, sessions):
    main, lake = (loc.id for loc in practice.locations)
    async with unit_of_work(sessions) as session:
        user = await tenancy_service.create_staff_user(
            session,
            practice.tenant.id,
            email="desk@example.com",
            name="Desk",
            password="a long enough password",
            rights={main: ["tasks:manage"]},
        )
    await push(
        sessions,
        practice.tenant.id,
        main,
        "patients",
        [{"external_id": "p1", "first_name": "Ann", "last_name": "Lee", "status": "active"}],
    )
    due = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    created = []
    for n, (location, kind, assignee) in enumerate(
        [(main, "call", user.id), (main, "reply", "Front desk"), (lake, "other", None)]
    ):
        response = await client.post(
            "/v1/tasks",
            json=task_body(location, kind=kind, title=f"Task {n}", assignee=assignee, due_at=due),
            headers=practice.headers,
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    assert created[0]["assignee_user_id"] == user.id and created[1]["assignee_user_id"] is None
    assert created[0]["status"] == "open" and created[0]["id"].startswith("tsk_")

    page = await client.get("/v1/tasks", params={"limit": 2}, headers=practice.headers)
    assert [t["id"] for t in page.json()["data"]] == [t["id"] for t in created[:2]]
    rest = await client.get(
        "/v1/tasks",
        params={"limit": 2, "cursor": page.json()["next_cursor"]},
        headers=practice.headers,
    )
    assert [t["id"] for t in rest.json()["data"]] == [created[2]["id"]]
    assert rest.json()["next_cursor"] is None

    async def ids(**params):
        response = await client.get("/v1/tasks", params=params, headers=practice.headers)
        return [t["id"] for t in response.json()["data"]]

    assert await ids(location_id=lake) == [created[2]["id"]]
    assert await ids(kind="reply") == [created[1]["id"]]
    assert await ids(assignee=user.id) == [created[0]["id"]]

    patched = await client.patch(
        f"/v1/tasks/{created[0]['id']}",
        json={"status": "done", "notes": "Left a voicemail", "assignee": "Dr. Ada"},
        headers=practice.headers,
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["status"] == "done" and body["notes"] == "Left a voicemail"
    assert body["assignee"] == "Dr. Ada" and body["assignee_user_id"] is None
    assert body["due_at"] is not None  # untouched
    assert await ids(status="done") == [created[0]["id"]]
    cleared = await client.patch(
        f"/v1/tasks/{created[0]['id']}", json={"due_at": None}, headers=practice.headers
    )
    assert cleared.json()["due_at"] is None
    got = await client.get(f"/v1/tasks/{created[1]['id']}", headers=practice.headers)
    assert got.status_code == 200 and got.json()["title"] == "Task 1"


async def test_bad_input_names_the_field(client, practice):
    main = practice.locations[0].id

    async def field(body, method="post", path="/v1/tasks"):
        response = await client.request(method, path, json=body, headers=practice.headers)
        assert response.status_code == 422, response.text
        return response.json()["errors"][0]["field"]

    assert await field(task_body(main, kind="fax")) == "kind"
    assert await field(task_body(main, assignee="usr_nobody")) == "assignee"
    assert await field(task_body(main, patient_id="pat_nobody")) == "patient_id"
    task = await client.post("/v1/tasks", json=task_body(main), headers=practice.headers)
    path = f"/v1/tasks/{task.json()['id']}"
    assert await field({"status": "archived"}, "patch", path) == "status"
    assert await field({"status": None}, "patch", path) == "status"


@pytest.mark.scopes("schedule:read")
async def test_tasks_need_the_tasks_scope(client, practice):
    response = await client.get("/v1/tasks", headers=practice.headers)
    assert response.status_code == 403
    assert response.json()["required_scopes"] == ["tasks:manage"]


async def test_tasks_are_per_tenant_and_location(
    client, practice, other_practice, make_token, make_publishable_key
):
    main, lake = (loc.id for loc in practice.locations)
    task = (await client.post("/v1/tasks", json=task_body(lake), headers=practice.headers)).json()
    assert (
        await client.get(f"/v1/tasks/{task['id']}", headers=other_practice.headers)
    ).status_code == 404
    assert (
        await client.patch(
            f"/v1/tasks/{task['id']}", json={"status": "done"}, headers=other_practice.headers
        )
    ).status_code == 404
    assert (await client.get("/v1/tasks", headers=other_practice.headers)).json()["data"] == []
    foreign = await client.post("/v1/tasks", json=task_body(main), headers=other_practice.headers)
    assert foreign.status_code == 404
    main_only = {"Authorization": f"Bearer {await make_token(practice.tenant.id, None, [main])}"}
    assert (await client.get(f"/v1/tasks/{task['id']}", headers=main_only)).status_code == 404
    widget = widget_headers(await make_publishable_key(practice.tenant.id, [main]))
    assert (await client.post("/v1/tasks", json=task_body(main), headers=widget)).status_code == 403


async def test_graphql_parity_for_tasks(client, practice):
    from tests.graphql.conftest import GraphQLClient

    gql = GraphQLClient(client)
    main = practice.locations[0].id
    created = await gql.execute(
        "mutation($input: TaskInput!) { createTask(input: $input) { id kind status } }",
        {"input": {"kind": "booking_exception", "title": "Check chart", "locationId": main}},
        practice.headers,
    )
    task = created["data"]["createTask"]
    assert task["kind"] == "booking_exception" and task["status"] == "open"
    updated = await gql.execute(
        'mutation($id: ID!) { updateTask(id: $id, patch: {status: "in_progress"}) '
        "{ status notes } }",
        {"id": task["id"]},
        practice.headers,
    )
    assert updated["data"]["updateTask"] == {"status": "in_progress", "notes": None}
    listed = await gql.execute(
        '{ tasks(status: "in_progress") { nodes { id } nextCursor } }', None, practice.headers
    )
    assert listed["data"]["tasks"]["nodes"] == [{"id": task["id"]}]
    rest = await client.get(f"/v1/tasks/{task['id']}", headers=practice.headers)
    assert rest.json()["status"] == "in_progress"
    bad = await gql.execute(
        "mutation($input: TaskInput!) { createTask(input: $input) { id } }",
        {"input": {"kind": "fax", "title": "x", "locationId": main}},
        practice.headers,
    )
    assert bad["errors"][0]["extensions"]["code"] == "VALIDATION_ERROR"
    assert bad["errors"][0]["extensions"]["errors"][0]["field"] == "input.kind"
