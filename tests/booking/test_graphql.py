"""GraphQL parity: slots, nextAvailable, createHold, confirmHold, reschedule, cancel and
the report answer what REST answers, through the same services."""

from __future__ import annotations

from tests.booking.conftest import count, widget_headers
from tests.graphql.conftest import GraphQLClient

SLOTS = """query($loc: String!, $type: String!, $day: String!) {
  slots(locationId: $loc, appointmentType: $type, start: $day, end: $day) {
    slots { start end providers operatories } timeZone dataAsOf
  }
  nextAvailable(locationId: $loc, appointmentType: $type, after: $day) { slot { start } }
}"""
HOLD = """mutation($input: HoldInput!, $key: String!) {
  createHold(input: $input, idempotencyKey: $key) { id status holdExpiresAt }
}"""
CONFIRM = """mutation($id: ID!, $patient: PatientInput!, $key: String!) {
  confirmHold(id: $id, patient: $patient, idempotencyKey: $key) {
    status patientCreated appointment { id source }
  }
}"""


async def test_booking_through_graphql(client, mirror, practice, sessions, make_publishable_key):
    gql = GraphQLClient(client)
    variables = {
        "loc": mirror.location_id,
        "type": mirror.types["clean"],
        "day": mirror.day.isoformat(),
    }
    rest = await client.get(
        f"/v1/locations/{mirror.location_id}/slots",
        params={
            "appointment_type": mirror.types["clean"],
            "start": mirror.day.isoformat(),
            "end": mirror.day.isoformat(),
        },
        headers=mirror.headers,
    )
    body = await gql.execute(SLOTS, variables, mirror.headers)
    assert "errors" not in body, body
    assert [s["start"] for s in body["data"]["slots"]["slots"]] == [
        s["start"] for s in rest.json()["data"]
    ]
    assert body["data"]["nextAvailable"]["slot"]["start"] == mirror.at(9).isoformat()

    widget = widget_headers(await make_publishable_key(practice.tenant.id, [mirror.location_id]))
    held = await gql.execute(
        HOLD,
        {
            "input": {
                "locationId": mirror.location_id,
                "appointmentTypeId": mirror.types["clean"],
                "start": mirror.at(10).isoformat(),
            },
            "key": "hold-1",
        },
        widget,
    )
    assert held["data"]["createHold"]["status"] == "held", held
    taken = await gql.execute(
        HOLD,
        {
            "input": {
                "locationId": mirror.location_id,
                "appointmentTypeId": mirror.types["clean"],
                "start": mirror.at(10).isoformat(),
            },
            "key": "hold-2",
        },
        mirror.headers,
    )
    assert taken["errors"][0]["extensions"]["reason"] == "taken"
    confirmed = await gql.execute(
        CONFIRM,
        {
            "id": held["data"]["createHold"]["id"],
            "patient": {
                "firstName": "Lu",
                "lastName": "Chen",
                "birthdate": "1990-01-02",
                "email": "lu@example.com",
            },
            "key": "confirm-1",
        },
        widget,
    )
    result = confirmed["data"]["confirmHold"]
    assert result["status"] == "confirmed" and result["patientCreated"] is True
    appointment_id = result["appointment"]["id"]

    refused = await gql.execute(
        "mutation($id: ID!) { cancelAppointment(id: $id) { status } }",
        {"id": appointment_id},
        widget,
    )
    assert refused["errors"][0]["extensions"]["status"] == 403
    moved = await gql.execute(
        "mutation($id: ID!, $start: DateTime!) { rescheduleAppointment(id: $id, "
        "input: {start: $start}) { start } }",
        {"id": appointment_id, "start": mirror.at(12).isoformat()},
        mirror.headers,
    )
    assert "errors" not in moved, moved
    cancelled = await gql.execute(
        'mutation($id: ID!) { cancelAppointment(id: $id, reason: "moved away") { status } }',
        {"id": appointment_id},
        mirror.headers,
    )
    assert cancelled["data"]["cancelAppointment"]["status"] == "cancelled"
    assert await count(sessions, "SELECT count(*) FROM writebacks") == 3
    report = await gql.execute(
        "query($loc: String!, $d: Date!) { bookingReport(locationId: $loc, date: $d) "
        "{ onlineBookings pending } }",
        {"loc": mirror.location_id, "d": __import__("datetime").date.today().isoformat()},
        mirror.headers,
    )
    assert "errors" not in report, report


def _hold_vars(mirror, hour: int, key: str) -> dict:
    return {
        "input": {
            "locationId": mirror.location_id,
            "appointmentTypeId": mirror.types["clean"],
            "start": mirror.at(hour).isoformat(),
        },
        "key": key,
    }


LU = {"firstName": "Lu", "lastName": "Chen", "birthdate": "1990-01-02", "email": "lu@example.com"}


async def test_create_and_confirm_replay_with_their_key(client, mirror, sessions):
    gql = GraphQLClient(client)
    first = await gql.execute(HOLD, _hold_vars(mirror, 10, "k-hold"), mirror.headers)
    again = await gql.execute(HOLD, _hold_vars(mirror, 10, "k-hold"), mirror.headers)
    assert "errors" not in again, again
    # The same answer, and still one hold: the replay did not try the slot a second time.
    assert again["data"]["createHold"] == first["data"]["createHold"]
    assert await count(sessions, "SELECT count(*) FROM booking_holds") == 1

    hold_id = first["data"]["createHold"]["id"]
    confirm_vars = {"id": hold_id, "patient": LU, "key": "k-confirm"}
    confirmed = await gql.execute(CONFIRM, confirm_vars, mirror.headers)
    replayed = await gql.execute(CONFIRM, confirm_vars, mirror.headers)
    assert "errors" not in replayed, replayed
    assert replayed["data"] == confirmed["data"]
    assert confirmed["data"]["confirmHold"]["status"] == "confirmed"
    assert await count(sessions, "SELECT count(*) FROM appointments") == 1
    assert await count(sessions, "SELECT count(*) FROM writebacks") == 1


async def test_a_key_reused_with_other_input_is_refused(client, mirror, sessions):
    gql = GraphQLClient(client)
    first = await gql.execute(HOLD, _hold_vars(mirror, 10, "k-1"), mirror.headers)
    assert "errors" not in first, first
    other = await gql.execute(HOLD, _hold_vars(mirror, 11, "k-1"), mirror.headers)
    assert other["data"] is None
    assert other["errors"][0]["extensions"]["status"] == 422
    assert other["errors"][0]["extensions"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert await count(sessions, "SELECT count(*) FROM booking_holds") == 1
    # The key space is the caller's, shared with REST: the GraphQL key cannot confirm.
    hold_id = first["data"]["createHold"]["id"]
    reused = await gql.execute(
        CONFIRM, {"id": hold_id, "patient": LU, "key": "k-1"}, mirror.headers
    )
    assert reused["errors"][0]["extensions"]["status"] == 422
    rest = await client.post(
        f"/v1/holds/{hold_id}/confirm",
        json={
            "first_name": "Lu",
            "last_name": "Chen",
            "birthdate": "1990-01-02",
            "email": "lu@example.com",
        },
        headers=mirror.headers | {"Idempotency-Key": "k-1"},
    )
    assert rest.status_code == 422 and "idempotency-key-reused" in rest.json()["type"]
    assert await count(sessions, "SELECT count(*) FROM appointments") == 0


async def test_a_failed_mutation_frees_its_key_and_writes_nothing(client, mirror, sessions):
    gql = GraphQLClient(client)
    held = await gql.execute(HOLD, _hold_vars(mirror, 10, "k-hold"), mirror.headers)
    hold_id = held["data"]["createHold"]["id"]
    bad = await gql.execute(
        CONFIRM,
        {"id": hold_id, "patient": LU | {"email": "not-an-email"}, "key": "k-c"},
        mirror.headers,
    )
    assert bad["errors"][0]["extensions"]["status"] == 422
    assert await count(sessions, "SELECT count(*) FROM appointments") == 0
    assert await count(sessions, "SELECT count(*) FROM idempotency_keys WHERE key = 'k-c'") == 0
    # Corrected, the same key goes through.
    fixed = await gql.execute(CONFIRM, {"id": hold_id, "patient": LU, "key": "k-c"}, mirror.headers)
    assert fixed["data"]["confirmHold"]["status"] == "confirmed", fixed
    blank = await gql.execute(HOLD, _hold_vars(mirror, 11, ""), mirror.headers)
    assert blank["errors"][0]["extensions"]["status"] == 422
    missing = await gql.post(
        "mutation($input: HoldInput!) { createHold(input: $input) { id } }",
        {"input": _hold_vars(mirror, 11, "x")["input"]},
        mirror.headers,
    )
    assert "idempotencyKey" in missing.json()["errors"][0]["message"]
