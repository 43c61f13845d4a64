"""Content negotiation for bodies we keep pre-compressed (RFC 9110, section 12.5.3)."""

from __future__ import annotations

from starlette.responses import Response

JSON = "application/json"


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an `Accept-Encoding` value admits gzip: listed (or `*`) with a non-zero
    weight, and not refused by an explicit `gzip;q=0`."""
    if not accept_encoding:
        return False
    weights: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[coding] = weight
    if "gzip" in weights:
        return weights["gzip"] > 0
    if "x-gzip" in weights:
        return weights["x-gzip"] > 0
    return weights.get("*", 0.0) > 0


def json_response(
    body: bytes, gzipped: bytes | None, accept_encoding: str | None, status_code: int = 200
) -> Response:
    """JSON already serialized, sent gzipped when the client takes it and a gzip form
    exists. `Vary` tells caches the representation depends on Accept-Encoding."""
    headers = {"Vary": "Accept-Encoding"}
    if gzipped is not None and accepts_gzip(accept_encoding):
        headers["Content-Encoding"] = "gzip"
        return Response(gzipped, status_code=status_code, media_type=JSON, headers=headers)
    return Response(body, status_code=status_code, media_type=JSON, headers=headers)
