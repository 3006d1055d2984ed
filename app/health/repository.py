"""The readiness probe's one statement."""

from __future__ import annotations

import sqlalchemy as sa

from app.core.engines import get_engine

_PING = sa.text("SELECT 1")


async def ping_database() -> None:
    """A round trip to the database on a connection of its own (raises when it fails)."""
    async with get_engine().connect() as conn:
        await conn.execute(_PING)
