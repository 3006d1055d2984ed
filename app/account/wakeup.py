"""Waking this process's reset workers when a commit noted a password reset request (the
session listeners are listed in ``app.wiring``; the database row stays the truth, and other
processes' workers find it at their next poll)."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_NOTED = "waypoint.reset_requested"
_wake: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()


def note_reset_requested(session: AsyncSession) -> None:
    session.info[_NOTED] = True


def register_waker(loop: asyncio.AbstractEventLoop, wakeup: asyncio.Event) -> None:
    _wake.add((loop, wakeup))


def unregister_waker(loop: asyncio.AbstractEventLoop, wakeup: asyncio.Event) -> None:
    _wake.discard((loop, wakeup))


def wake_reset_workers(session: Session) -> None:
    if session.info.pop(_NOTED, False):
        for loop, wakeup in list(_wake):
            loop.call_soon_threadsafe(wakeup.set)


def forget_reset_requests(session: Session) -> None:
    session.info.pop(_NOTED, None)
