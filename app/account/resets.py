"""The reset worker: turns noted password reset requests into links, one per server process,
started and stopped by the app's lifespan (``app.wiring``).

Each round takes up to ``BATCH`` requests in one transaction (``repository.take_reset_requests``:
on PostgreSQL ``FOR UPDATE SKIP LOCKED``, so workers never take the same one), queues a link
for each address an account has, and commits: the links' messages are then the mail worker's.
A worker that dies mid-round leaves its requests in place for the next.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

import structlog

from app.account import repository
from app.account.service import send_reset_link
from app.account.wakeup import RESET_WAKEUP
from app.core.config import get_settings
from app.core.sessions import new_session
from app.core.wakeups import first_of

log = structlog.get_logger("waypoint.account")
BATCH = 32


class ResetWorker:
    def __init__(self, *, poll_seconds: float | None = None) -> None:
        self.poll_seconds = poll_seconds or get_settings().mail_poll_seconds
        self._wakeup = asyncio.Event()

    async def run_once(self) -> int:
        """Handle one batch of requests; how many were taken."""
        async with new_session(write=False) as reader:
            if not await repository.any_reset_request(reader):
                return 0
        async with new_session(write=True) as session:
            taken = await repository.take_reset_requests(session, BATCH)
            for request in taken:
                await send_reset_link(session, request.email_key)
            await session.commit()
        return len(taken)

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        RESET_WAKEUP.register(loop, self._wakeup)
        try:
            while not stop.is_set():
                self._wakeup.clear()
                try:
                    if await self.run_once():
                        continue
                except Exception as exc:  # the database is away, say: try again later
                    log.warning("reset_worker_error", error_type=type(exc).__name__)
                with suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_seconds):
                        await first_of(self._wakeup, stop)
        finally:
            RESET_WAKEUP.unregister(loop, self._wakeup)


async def send_password_resets(stop: asyncio.Event) -> None:
    """The process's reset worker (listed in ``app.wiring``); it runs wherever a mail worker
    does (``WAYPOINT_MAIL_WORKER``)."""
    if not get_settings().mail_worker:
        return
    await ResetWorker().run(stop)
