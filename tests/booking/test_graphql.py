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
HOLD = """mutation($input: HoldInput!) { createHold(input: $input) { id status holdExpiresAt } }"""
CONFIRM = """mutation($id: ID!, $patient: PatientInput!) {
  confirmHold(id: $id, patient: $patient) { status patientCreated appointment { id source } }
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
            }
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
            }
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
