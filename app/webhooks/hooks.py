"""The outbox as a before-commit hook of the unit of work."""

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.db import before_commit
from app.webhooks.outbox import write_outbox


@before_commit
async def _write_outbox(session: AsyncSession, _request: Request, _response: Response) -> None:
    await write_outbox(session)
