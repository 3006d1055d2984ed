"""The account flows' statements: links (``account_tokens``), the requests counted for
throttling (``account_requests``), and password-login sessions."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    AccountRequest,
    AccountToken,
    AuthSession,
    PasswordResetRequest,
    RefreshToken,
    User,
    new_id,
)

TOKENS = AccountToken.__table__
REQUESTS = AccountRequest.__table__
SESSIONS = AuthSession.__table__
REFRESH = RefreshToken.__table__
USERS = User.__table__
RESETS = PasswordResetRequest.__table__


async def recent_requests(
    session: AsyncSession, kind: str, key: str, since: dt.datetime, limit: int
) -> list[dt.datetime]:
    """The times of the latest ``limit`` requests of ``kind`` by ``key`` after ``since``,
    newest first."""
    result = await session.execute(
        sa.select(REQUESTS.c.at)
        .where(REQUESTS.c.kind == kind, REQUESTS.c.key == key, REQUESTS.c.at > since)
        .order_by(REQUESTS.c.at.desc())
        .limit(limit)
    )
    return list(result.scalars())


async def record_requests(session: AsyncSession, rows: list[dict[str, object]]) -> None:
    await session.execute(sa.insert(REQUESTS), rows)


async def add_reset_request(session: AsyncSession, email_key: str, now: dt.datetime) -> None:
    await session.execute(sa.insert(RESETS).values(email_key=email_key, created_at=now))


async def any_reset_request(session: AsyncSession) -> bool:
    return (await session.execute(sa.select(RESETS.c.id).limit(1))).first() is not None


async def take_reset_requests(session: AsyncSession, limit: int) -> list[sa.Row]:
    """Delete (take) the oldest ``limit`` reset requests, in order; on PostgreSQL skipping
    those another worker holds, so two workers never take the same one. Taken in the
    transaction that handles them: a worker that dies leaves them for the next."""
    oldest = (
        sa.select(RESETS.c.id).order_by(RESETS.c.id).limit(limit).with_for_update(skip_locked=True)
    )
    result = await session.execute(
        sa.delete(RESETS)
        .where(RESETS.c.id.in_(oldest.scalar_subquery()))
        .returning(RESETS.c.id, RESETS.c.email_key)
    )
    return sorted(result.all(), key=lambda row: row.id)


async def user_by_email_key(session: AsyncSession, email_key: str) -> sa.Row | None:
    result = await session.execute(
        sa.select(USERS.c.id, USERS.c.email, USERS.c.display_name).where(
            USERS.c.email_key == email_key
        )
    )
    return result.first()


async def email_key_taken(session: AsyncSession, email_key: str) -> bool:
    result = await session.execute(sa.select(USERS.c.id).where(USERS.c.email_key == email_key))
    return result.first() is not None


async def store_token(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    kind: str,
    token_hash: str,
    email: str,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> None:
    """A new link of ``kind`` for the account; its older unused ones of that kind stop
    working (the newest link is the only valid one)."""
    await supersede_tokens(session, user_id, kind, now)
    await session.execute(
        sa.insert(TOKENS).values(
            id=new_id(),
            user_id=user_id,
            kind=kind,
            token_hash=token_hash,
            email=email,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def supersede_tokens(
    session: AsyncSession, user_id: uuid.UUID, kind: str, now: dt.datetime
) -> None:
    await session.execute(
        sa.update(TOKENS)
        .where(TOKENS.c.user_id == user_id, TOKENS.c.kind == kind, TOKENS.c.used_at.is_(None))
        .values(used_at=now)
    )


async def use_token(
    session: AsyncSession, *, kind: str, token_hash: str, now: dt.datetime
) -> sa.Row | None:
    """Mark a live token of ``kind`` used, atomically (of two concurrent uses one wins): its
    account and address, or None."""
    result = await session.execute(
        sa.update(TOKENS)
        .where(
            TOKENS.c.token_hash == token_hash,
            TOKENS.c.kind == kind,
            TOKENS.c.used_at.is_(None),
            TOKENS.c.expires_at > now,
        )
        .values(used_at=now)
        .returning(TOKENS.c.user_id, TOKENS.c.email)
    )
    return result.first()


async def end_login_sessions(
    session: AsyncSession, user_id: uuid.UUID, now: dt.datetime, *, keep: uuid.UUID | None
) -> list[uuid.UUID]:
    """End every password-login session of the account but ``keep`` (its refresh tokens and,
    at once, its access tokens). Personal access tokens are not touched. The ended ids."""
    keep_clause = SESSIONS.c.id != keep if keep is not None else sa.true()
    ended = await session.execute(
        sa.update(SESSIONS)
        .where(SESSIONS.c.user_id == user_id, SESSIONS.c.revoked_at.is_(None), keep_clause)
        .values(revoked_at=now)
        .returning(SESSIONS.c.id)
    )
    ids = list(ended.scalars())
    keep_family = REFRESH.c.family_id != keep if keep is not None else sa.true()
    await session.execute(
        sa.update(REFRESH)
        .where(REFRESH.c.user_id == user_id, REFRESH.c.revoked_at.is_(None), keep_family)
        .values(revoked_at=now)
    )
    return ids


async def live_sessions(session: AsyncSession, user_id: uuid.UUID, now: dt.datetime) -> list:
    """The account's password-login sessions that can still be used (not ended, and holding
    a refresh token not yet used, revoked or expired), newest first."""
    live_refresh = sa.exists().where(
        REFRESH.c.family_id == SESSIONS.c.id,
        REFRESH.c.used_at.is_(None),
        REFRESH.c.revoked_at.is_(None),
        REFRESH.c.expires_at > now,
    )
    result = await session.execute(
        sa.select(
            SESSIONS.c.id, SESSIONS.c.created_at, SESSIONS.c.last_used_at, SESSIONS.c.user_agent
        )
        .where(SESSIONS.c.user_id == user_id, SESSIONS.c.revoked_at.is_(None), live_refresh)
        .order_by(SESSIONS.c.created_at.desc(), SESSIONS.c.id.desc())
    )
    return list(result)


async def session_owner(session: AsyncSession, session_id: uuid.UUID) -> uuid.UUID | None:
    result = await session.execute(
        sa.select(SESSIONS.c.user_id).where(
            SESSIONS.c.id == session_id, SESSIONS.c.revoked_at.is_(None)
        )
    )
    return result.scalar()
