from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.core.config import get_settings
from app.health.repository import ping_database

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


@router.get("/healthz", operation_id="health_live", response_model=Health)
async def healthz() -> Health:
    """The process is up. Answered without the database and without waiting for a turn
    (admission), however busy the worker is."""
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="health_ready",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer"}},
)
async def readyz() -> JSONResponse:
    """The process can reach its database (within ``WAYPOINT_READY_TIMEOUT_SECONDS``)."""
    check = asyncio.create_task(ping_database())
    done, _ = await asyncio.wait({check}, timeout=get_settings().ready_timeout_seconds)
    if not done:
        # Answered now; the check is cancelled in the background (on a frozen server psycopg
        # spends several more seconds trying to cancel the query there).
        check.cancel()
        check.add_done_callback(_ignore_outcome)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    if check.exception() is not None:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def _ignore_outcome(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
