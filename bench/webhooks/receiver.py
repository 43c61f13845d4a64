"""A fast webhook receiver for the benchmark, run as a process of its own:

    python -m bench.webhooks.receiver --port 8765

A bare ASGI app on uvicorn (uvloop + httptools). Every POST is recorded as (path,
webhook-id, arrival time as `time.time()`) and answered 200 with a small body. Control:
`GET /_count?path=/hook` (arrivals so far), `GET /_records?path=/hook` (JSON list of
[webhook-id, arrival]), `POST /_reset` (forget everything).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any
from urllib.parse import parse_qs

import uvicorn

Scope = dict[str, Any]

_records: dict[str, list[tuple[str, float]]] = {}


async def _read_body(receive: Any) -> None:
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)


async def _answer(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    if scope["method"] == "POST" and not path.startswith("/_"):
        arrived = time.time()
        webhook_id = ""
        for name, value in scope["headers"]:
            if name == b"webhook-id":
                webhook_id = value.decode()
                break
        await _read_body(receive)
        _records.setdefault(path, []).append((webhook_id, arrived))
        await _answer(send, 200, b"ok", b"text/plain")
        return
    await _read_body(receive)
    query = parse_qs(scope.get("query_string", b"").decode())
    wanted = query.get("path", ["/hook"])[0]
    if path == "/_count":
        body = str(len(_records.get(wanted, []))).encode()
    elif path == "/_records":
        body = json.dumps(_records.get(wanted, [])).encode()
    elif path == "/_reset":
        _records.clear()
        body = b"{}"
    else:
        await _answer(send, 404, b"not found", b"text/plain")
        return
    await _answer(send, 200, body, b"application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description="benchmark webhook receiver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
