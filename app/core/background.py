"""Background workers: long-running tasks each worker process runs beside its requests (a
webhook delivery loop, say), started and stopped by the application's lifespan.

A worker is an ``async def`` taking a stop event; it returns soon after the event is set::

    async def deliver_webhooks(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ...  # one short unit of work, then wait for more or for stop

and runs because ``app.wiring.BACKGROUND_WORKERS`` lists it (``create_app`` hands that list to
the lifespan); defining it registers nothing.

On shutdown (SIGTERM) uvicorn first stops accepting and lets in-flight requests finish, then
the lifespan sets the stop event and waits up to ``STOP_TIMEOUT_SECONDS`` for the workers to
return; a worker still running then is cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import structlog

log = structlog.get_logger("waypoint.background")
BackgroundWorker = Callable[[asyncio.Event], Awaitable[None]]
STOP_TIMEOUT_SECONDS = 10.0


@asynccontextmanager
async def running_background_workers(
    workers: Sequence[BackgroundWorker], stop_timeout: float = STOP_TIMEOUT_SECONDS
) -> AsyncIterator[list[asyncio.Task[None]]]:
    """Run each of ``workers`` as a task while the block runs; then stop them."""
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(_run(worker, stop), name=f"background:{worker.__name__}")
        for worker in workers
    ]
    try:
        yield tasks
    finally:
        stop.set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=stop_timeout)
            for task in pending:
                log.warning("background_worker_cancelled", worker=task.get_name())
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


async def _run(worker: BackgroundWorker, stop: asyncio.Event) -> None:
    try:
        await worker(stop)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # Logged, not re-raised: one broken worker must not take the requests down with it.
        log.error("background_worker_failed", worker=worker.__name__, error_type=type(exc).__name__)
