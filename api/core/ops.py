"""Operational endpoints: liveness, readiness (database and Redis) and Prometheus metrics.
Public by design: they reveal nothing about tenants."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    redis: str


@router.get("/healthz", summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    summary="The database and Redis answer",
    responses={503: {"model": Readiness, "description": "A dependency does not answer"}},
)
async def readyz(request: Request) -> Response:
    state = request.app.state.chairfill

    async def database() -> str:
        async with state.sessions() as session:
            await session.execute(text("SELECT 1"))
        return "ok"

    async def redis() -> str:
        await state.redis.ping()
        return "ok"

    results = await asyncio.gather(
        asyncio.wait_for(database(), 3), asyncio.wait_for(redis(), 3), return_exceptions=True
    )
    db, rd = (r if isinstance(r, str) else f"error: {type(r).__name__}" for r in results)
    ready = db == "ok" and rd == "ok"
    body = Readiness(status="ok" if ready else "unavailable", database=db, redis=rd)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
