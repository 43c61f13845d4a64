"""The reference booking widget: a static page at `/widget/{location_id}` and its script
and stylesheet. Public on purpose: the page holds no data; everything it shows comes from
the booking API, called with the publishable key the page is given (`?publishable_key=`
or a data attribute), which the API checks (its locations, scopes and allowed origins)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, Response

router = APIRouter(tags=["booking-widget"], include_in_schema=False)

ASSETS = {"widget.js": "text/javascript", "widget.css": "text/css"}
# The page runs only its own script and talks only to its own origin's API; the key in
# its address must not leak to other sites through Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@cache
def _asset(name: str) -> bytes:
    return resources.files("api.booking").joinpath("widget_assets", name).read_bytes()


@router.get("/widget/assets/{name}")
async def widget_asset(name: str) -> Response:
    if name not in ASSETS:
        return Response(status_code=404)
    return Response(_asset(name), media_type=ASSETS[name], headers=SECURITY_HEADERS)


@router.get("/widget/{location_id}", response_class=HTMLResponse)
async def widget_page(
    location_id: str = Path(max_length=40, pattern=r"^[A-Za-z0-9_]+$"),
) -> HTMLResponse:
    # The script reads the location from this page's path; the page itself is the same.
    del location_id
    return HTMLResponse(_asset("index.html"), headers=SECURITY_HEADERS)
