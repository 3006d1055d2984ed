"""Admission: at most N requests of a worker are being served at once; the rest wait their turn
in arrival order.

Without it every request a worker accepts starts at once and they take turns on the event loop
at each await (a database round trip, a pool checkout). Under load that is unfair: a request
can wait several rounds of everybody else's work, and waits for a pooled connection are not
served in order. Measured with 50 connections on one PostgreSQL worker (bench/README.md), a
page of goals had p99 at 2-3 times p50; with 10 admitted at a time the p99 fell to 1.3-1.6
times p50, and throughput rose (fewer database sessions competing for the same cores).

The limit also keeps a worker from asking its pools for more connections than they hold.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

_in_flight = 0


def requests_in_flight() -> int:
    """Requests this process is serving or holding in line (background work yields to them)."""
    return _in_flight


class AdmissionMiddleware:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self._turns: asyncio.Semaphore | None = None  # made on first use, on the serving loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._turns is None:
            self._turns = asyncio.Semaphore(self.limit)  # first come, first served (3.11+)
        global _in_flight
        _in_flight += 1
        try:
            async with self._turns:
                await self.app(scope, receive, send)
        finally:
            _in_flight -= 1
