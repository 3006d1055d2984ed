"""Waking this process's background workers when a committed transaction left work for them.

A worker polls its table, and a commit that wrote a row for it wakes it at once instead of at
its next poll. The write notes it on the session (``note``); the session listeners, listed in
``app.wiring``, wake the registered workers after the commit (``after_commit``) and forget the
note after a rollback (``after_rollback``). The database row stays the truth: workers of other
processes find it at their next poll.
"""

from __future__ import annotations

import asyncio
from typing import Any


class CommitWakeup:
    """The workers of one kind in this process, and the note that a transaction has work for
    them."""

    def __init__(self, name: str) -> None:
        self._key = f"waypoint.wakeup.{name}"
        self._wakers: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def note(self, session: Any) -> None:
        """The session's transaction wrote work for these workers (a sync or async session)."""
        session.info[self._key] = True

    def register(self, loop: asyncio.AbstractEventLoop, wakeup: asyncio.Event) -> None:
        self._wakers.add((loop, wakeup))

    def unregister(self, loop: asyncio.AbstractEventLoop, wakeup: asyncio.Event) -> None:
        self._wakers.discard((loop, wakeup))

    def after_commit(self, session: Any) -> None:
        """Session listener: a commit that noted work wakes the workers."""
        if session.info.pop(self._key, False):
            for loop, wakeup in list(self._wakers):
                loop.call_soon_threadsafe(wakeup.set)

    def after_rollback(self, session: Any) -> None:
        """Session listener: what was rolled back wakes no one."""
        session.info.pop(self._key, None)


async def first_of(*events: asyncio.Event) -> None:
    """Return once any of ``events`` is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
