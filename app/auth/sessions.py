"""Is the login behind an access token still live? One primary-key lookup, or none.

An access token names its login (``sid``, the refresh-token family). Logging out, reusing a
rotated refresh token and erasing the account end that login in ``auth_sessions``; from then
on its access tokens are refused on every route, not only once they expire.

Writes always look the session up (in a short read of their own). Reads trust a per-worker
memory of sessions found live for at most ``LIVE_SECONDS``: a revocation made by another worker
is seen within that second, one made by this worker at once (it forgets what it revoked).
The lookup would otherwise cost a read on every GET, most of the cheapest request's time
(bench/README.md, "Figures behind the code's comments").
"""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.reads import fetch_rows
from app.core.sessions import new_session
from app.models import AuthSession, User

LIVE_SECONDS = 1.0
_MAX_REMEMBERED = 50_000

# session id -> (user id, monotonic time it was found live)
_live: dict[uuid.UUID, tuple[uuid.UUID, float]] = {}

_LOOKUP = sa.select(AuthSession.user_id).where(
    AuthSession.id == sa.bindparam("sid"), AuthSession.revoked_at.is_(None)
)


async def session_is_live(
    session: AsyncSession, session_id: uuid.UUID, user_id: uuid.UUID, *, write: bool
) -> bool:
    now = time.monotonic()
    if not write:
        seen = _live.get(session_id)
        if seen is not None and seen[0] == user_id and now - seen[1] < LIVE_SECONDS:
            return True
    if write:
        # In a short read of its own: on SQLite the request's write transaction takes the
        # write lock at its first statement, and every other writer would wait from here
        # until the handler is done (smoke bench on a busy machine: create / bare insert
        # 0.30 with the lookup in the write transaction, 0.66 with this read).
        # On SQLite the read fast path (inline on the read-only connection: no thread hop).
        async with new_session(write=False) as reader:
            rows = await fetch_rows(reader, _LOOKUP, {"sid": session_id})
    else:
        # The read fast path: on SQLite inline on the read-only connection (no thread hop, no
        # transaction to end), on PostgreSQL the request's own autocommit connection.
        rows = await fetch_rows(session, _LOOKUP, {"sid": session_id})
    owner = rows[0][0] if rows else None
    if owner != user_id:  # revoked, deleted with its user, or never issued
        _live.pop(session_id, None)
        return False
    if len(_live) >= _MAX_REMEMBERED:
        _live.clear()
    _live[session_id] = (owner, now)
    return True


def forget_sessions(session_ids: list[uuid.UUID] | None = None) -> None:
    """This worker stops trusting these sessions (all of them when ``None``) at once."""
    if session_ids is None:
        _live.clear()
        return
    for session_id in session_ids:
        _live.pop(session_id, None)


_ACCOUNT = sa.select(User.id).where(User.id == sa.bindparam("user_id"))


async def account_is_gone(user_id: uuid.UUID) -> bool:
    """Whether an account no longer exists (erased while one of its requests was writing),
    looked up in a short read of its own: the request's transaction has ended by then."""
    async with new_session(write=False) as reader:
        return not await fetch_rows(reader, _ACCOUNT, {"user_id": user_id})
