from __future__ import annotations

import anyio
import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.core.db import get_engine

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


@router.get("/healthz", operation_id="health_live", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="health_ready",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer"}},
)
async def readyz() -> JSONResponse:
    """The process can reach its database."""
    try:
        with anyio.fail_after(2):
            async with get_engine().connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
    except Exception:
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})
