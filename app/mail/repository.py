"""The mail outbox's statements: claiming due messages, recording outcomes, measuring.

The claim is one ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``:
on PostgreSQL any number of workers in any number of servers share the queue without waiting
on each other or taking the same message; SQLite renders no locking clause and needs none,
since its write transactions take turns. Claiming counts the attempt and pushes
``next_attempt_at`` past the attempt's time limit (the lease).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import MailMessage

MESSAGES = MailMessage.__table__
_IS_DUE = sa.and_(MESSAGES.c.status == "pending", MESSAGES.c.next_attempt_at <= sa.bindparam("now"))


async def insert_message(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(sa.insert(MESSAGES), values)


ANY_DUE = sa.select(MESSAGES.c.id).where(_IS_DUE).limit(1)

_DUE = (
    sa.select(MESSAGES.c.id)
    .where(_IS_DUE)
    .order_by(MESSAGES.c.next_attempt_at)
    .limit(sa.bindparam("batch"))
    .with_for_update(skip_locked=True)
)
CLAIM = (
    sa.update(MESSAGES)
    .where(MESSAGES.c.id.in_(_DUE.scalar_subquery()))
    .values(attempts=MESSAGES.c.attempts + 1, next_attempt_at=sa.bindparam("lease_until"))
    .returning(
        MESSAGES.c.id, MESSAGES.c.template, MESSAGES.c.message_id, MESSAGES.c.sender,
        MESSAGES.c.recipient, MESSAGES.c.subject, MESSAGES.c.headers, MESSAGES.c.text_body,
        MESSAGES.c.html_body, MESSAGES.c.attempts, MESSAGES.c.created_at,
    )
)  # fmt: skip

# An outcome counts only for the attempt that claimed it (a lease that ran out meanwhile may
# have let another worker claim the message again).
_THIS_ATTEMPT = sa.and_(
    MESSAGES.c.id == sa.bindparam("m_id"),
    MESSAGES.c.attempts == sa.bindparam("m_attempts"),
    MESSAGES.c.status == "pending",
)
# Sent or given up: the bodies go (a link in them is a credential).
FINISHED = (
    sa.update(MESSAGES)
    .where(_THIS_ATTEMPT)
    .values(
        status=sa.bindparam("m_status"),
        sent_at=sa.bindparam("m_sent_at"),
        last_error=sa.bindparam("m_error"),
        text_body=None,
        html_body=None,
    )
)
RETRY = (
    sa.update(MESSAGES)
    .where(_THIS_ATTEMPT)
    .values(next_attempt_at=sa.bindparam("m_next"), last_error=sa.bindparam("m_error"))
)

MEASURE = sa.select(sa.func.count(), sa.func.min(MESSAGES.c.created_at)).where(
    MESSAGES.c.status == "pending"
)
