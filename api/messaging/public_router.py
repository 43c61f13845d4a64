"""Public messaging routes (no bearer token): Twilio's callbacks, verified by signature,
and the one-click unsubscribe links, verified by their signed token."""

from __future__ import annotations

from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.security import APIKeyHeader

from api.core.clock import utcnow
from api.core.db import unit_of_work
from api.core.errors import Forbidden
from api.core.state import AppState
from api.messaging import inbound, optouts
from api.messaging.unsubscribe import read_token

router = APIRouter(
    tags=["messaging-callbacks"],
    responses={
        403: {"description": "Unsigned or wrongly signed"},
        404: {"description": "Not a valid unsubscribe link"},
    },
)

# Documents (and reads) Twilio's signature header; the check itself is in `_verified`.
twilio_signature = APIKeyHeader(
    name="X-Twilio-Signature",
    scheme_name="TwilioSignature",
    description="HMAC-SHA1 of the URL and form fields with the account's auth token "
    "(Twilio's request validation).",
    auto_error=False,
)
TwilioSignature = Annotated[str | None, Depends(twilio_signature)]
# The unsubscribe routes are public on purpose: the signed token in the path is the key.
PUBLIC: dict[str, Any] = {"security": [{}]}

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _signed_url(request: Request, state: AppState) -> str:
    """The URL Twilio requested (and signed): the public URL when we sit behind a proxy."""
    base = state.settings.public_url.rstrip("/")
    if not base:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return f"{base}{request.url.path}{query}"


async def _verified(
    request: Request, signature: str | None
) -> tuple[AppState, str, dict[str, str]]:
    state: AppState = request.app.state.chairfill
    form = {k: str(v) for k, v in (await request.form()).items()}
    if any("\x00" in k or "\x00" in v for k, v in form.items()):
        raise Forbidden("The X-Twilio-Signature does not verify.")
    async with unit_of_work(state.sessions) as session:
        found = await inbound.verify_twilio(
            session, state.settings, _signed_url(request, state), form, signature
        )
    if found is None:
        raise Forbidden("The X-Twilio-Signature does not verify.")
    return state, found.tenant_id, form


@router.post(
    "/v1/messaging/twilio/status",
    summary="Twilio delivery reports (signed with X-Twilio-Signature)",
    status_code=204,
)
async def twilio_status(request: Request, signature: TwilioSignature) -> Response:
    state, tenant_id, form = await _verified(request, signature)
    async with unit_of_work(state.sessions, tenant_id) as session:
        await inbound.apply_status(session, tenant_id, form)
    return Response(status_code=204)


@router.post(
    "/v1/messaging/twilio/inbound",
    summary="Texts from patients (Twilio's incoming-message webhook, signed)",
    responses={
        200: {"content": {"text/xml": {}}, "description": "Empty TwiML"},
    },
)
async def twilio_inbound(request: Request, signature: TwilioSignature) -> Response:
    state, tenant_id, form = await _verified(request, signature)
    async with unit_of_work(state.sessions, tenant_id) as session:
        await inbound.handle_inbound(session, tenant_id, form, state.settings)
    # Our answers go out through the send ledger, so the TwiML says nothing.
    return Response(EMPTY_TWIML, media_type="text/xml")


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head>"
        '<body style="font-family:Helvetica,Arial,sans-serif;max-width:480px;margin:48px auto;'
        f'padding:0 16px;color:#222;"><h1 style="font-size:22px;">{escape(title)}</h1>'
        f"{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _invalid() -> HTMLResponse:
    return _page("Link not valid", "<p>This unsubscribe link is not valid.</p>", 404)


@router.get(
    "/v1/messaging/unsubscribe/{token}",
    summary="The unsubscribe page of an email's link (asks to confirm)",
    response_class=HTMLResponse,
    openapi_extra=PUBLIC,
)
async def unsubscribe_page(token: str, request: Request) -> HTMLResponse:
    state: AppState = request.app.state.chairfill
    target = read_token(state.settings.secret_key, token)
    if target is None or target.channel != "email":
        return _invalid()
    async with unit_of_work(state.sessions, target.tenant_id) as session:
        patient = await optouts.unsubscribe_patient(session, target.tenant_id, target.patient_id)
    if patient is None:
        return _invalid()
    # GET changes nothing: mail scanners follow links; a person presses the button.
    form = (
        f'<form method="post" action="{escape(request.url.path)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit" style="padding:10px 20px;font-size:16px;">Unsubscribe</button>'
        "</form>"
    )
    return _page("Unsubscribe from our emails?", f"<p>{escape(patient.email or '')}</p>{form}")


@router.post(
    "/v1/messaging/unsubscribe/{token}",
    summary="One-click unsubscribe (RFC 8058): no more email for this patient",
    response_class=HTMLResponse,
    openapi_extra=PUBLIC,
)
async def unsubscribe(token: str, request: Request) -> HTMLResponse:
    state: AppState = request.app.state.chairfill
    target = read_token(state.settings.secret_key, token)
    if target is None or target.channel != "email":
        return _invalid()
    async with unit_of_work(state.sessions, target.tenant_id) as session:
        patient = await optouts.unsubscribe_email(
            session, target.tenant_id, target.patient_id, utcnow()
        )
    if patient is None:
        return _invalid()
    return _page(
        "You are unsubscribed",
        "<p>You will get no more emails from us. You can close this page.</p>",
    )
