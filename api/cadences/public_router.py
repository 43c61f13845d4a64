"""Public routes of one-tap booking links (no bearer token: the random code is the key).

`/b/{code}` is what a cadence message links to: it sends the browser to the booking widget
with the invite (and the location's publishable key). `/v1/booking-invites/{code}` is what
the widget reads to fill in the patient's name and preselect the appointment type."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.cadences import service
from api.cadences.schemas import BookingInviteOut
from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.errors import NotFound
from api.core.state import AppState

router = APIRouter(tags=["booking-invites"])
PUBLIC: dict[str, Any] = {"security": [{}]}
Code = Path(min_length=1, max_length=40)

EXPIRED_PAGE = (
    "<!doctype html><html lang='en'><meta charset='utf-8'><title>Link expired</title>"
    "<meta name='viewport' content='width=device-width, initial-scale=1'>"
    "<p>This booking link has expired. Please call the office to book.</p></html>"
)


async def _open(request: Request, code: str) -> BookingInviteOut | None:
    state: AppState = request.app.state.chairfill
    async with unit_of_work(state.sessions) as session:
        return await service.open_invite(session, code, state.settings, utcnow())


@router.get("/b/{code}", include_in_schema=False)
async def open_booking_link(request: Request, code: str = Code) -> Response:
    invite = await _open(request, code)
    if invite is None:
        return HTMLResponse(EXPIRED_PAGE, status_code=404)
    query = {"invite": code.lower()}
    if invite.publishable_key:
        query["publishable_key"] = invite.publishable_key
    # The widget page keeps its key out of Referer headers (Referrer-Policy: no-referrer).
    return RedirectResponse(f"/widget/{invite.location_id}?{urlencode(query)}", status_code=303)


@router.get(
    "/v1/booking-invites/{code}",
    summary="Read a one-tap booking link (public: the code is the key)",
    description="For the booking widget: the location, a publishable key it may use, the "
    "preselected appointment type and the invited patient's name. Confirming a hold with "
    "`invite` set attributes the booking to the cadence step that sent the link. 404 once "
    "the link has expired.",
    openapi_extra=PUBLIC,
    responses={404: {"description": "Unknown or expired"}},
)
async def read_booking_invite(request: Request, code: str = Code) -> BookingInviteOut:
    invite = await _open(request, code)
    if invite is None:
        raise NotFound("This booking link is unknown or has expired.")
    return invite
