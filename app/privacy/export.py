"""``GET /v1/me/export``: all of the caller's data as one JSON document, streamed.

Each section is read in keyset batches (by id) and written out batch by batch, so the server
holds one batch at a time whatever the account's size. All batches are read in one snapshot
(``snapshot_session``), so the document is consistent even while the account changes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import Principal
from app.core.clock import utcnow
from app.core.http import dumps
from app.core.sessions import snapshot_session
from app.encouragements.service import readable_encouragements
from app.goals.access import readable_goals
from app.models import (
    AccessLogEntry,
    CareLink,
    Encouragement,
    Goal,
    PersonalAccessToken,
    Review,
    Step,
    User,
    Webhook,
)
from app.resources import RESOURCES

BATCH = 500
Render = Callable[[Any], dict[str, Any]]


def _user(u: Any) -> dict[str, Any]:
    return {"id": u.id, "email": u.email, "display_name": u.display_name, "role": u.role,
            "timezone": u.timezone, "created_at": u.created_at,
            "email_verified": u.email_verified}  # fmt: skip


def _link(row: Any) -> dict[str, Any]:
    return {"id": row.id, "therapist_id": row.therapist_id, "client_id": row.client_id,
            "created_at": row.created_at, "ended_at": row.ended_at}  # fmt: skip


def _token(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "scopes": row.scope.split(),
            "expires_at": row.expires_at, "created_at": row.created_at,
            "last_used_at": row.last_used_at, "revoked_at": row.revoked_at}  # fmt: skip


def _webhook(row: Any) -> dict[str, Any]:
    return {"id": row.id, "url": row.url, "events": row.events, "active": row.active,
            "created_at": row.created_at}  # fmt: skip


def _access(row: Any) -> dict[str, Any]:
    return {"at": row.at, "actor": {"id": row.actor_id, "display_name": row.display_name,
            "role": row.actor_role}, "action": row.action, "object_type": row.object_type,
            "object_id": row.object_id}  # fmt: skip


def _sections(principal: Principal) -> list[tuple[str, sa.Select[Any], Any, Render]]:
    """(name, statement, its id column, render) of each list in the document."""
    me = principal.user_id
    own = readable_goals(principal)
    goal, step, review, note = (RESOURCES[k] for k in ("goal", "step", "review", "encouragement"))
    if principal.is_therapist:  # what they wrote, of what they may still see
        goals = goal.select.where(own, Goal.created_by == me)
        steps = step.select.where(own, Step.created_by == me)
        reviews = review.select.where(own, Review.author_id == me)
    else:
        goals, steps, reviews = (r.select.where(own) for r in (goal, step, review))
    visible_notes = note.select.where(readable_encouragements(principal))
    party = CareLink.therapist_id if principal.is_therapist else CareLink.client_id
    log = AccessLogEntry
    sections = [
        ("care_links", sa.select(CareLink).where(party == me), CareLink.id, _link),
        ("goals", goals, goal.id_column, goal.render),
        ("steps", steps, step.id_column, step.render),
        ("reviews", reviews, review.id_column, review.render),
        ("encouragements_sent", visible_notes.where(Encouragement.author_id == me),
         note.id_column, note.render),
        ("encouragements_received", visible_notes.where(Encouragement.client_id == me),
         note.id_column, note.render),
        ("personal_tokens", sa.select(PersonalAccessToken).where(PersonalAccessToken.user_id == me),
         PersonalAccessToken.id, _token),
        ("webhooks", sa.select(Webhook).where(Webhook.user_id == me), Webhook.id, _webhook),
    ]  # fmt: skip
    if principal.is_client:
        sections.append((
            "access_log",
            sa.select(log.id, log.at, log.actor_id, log.actor_role, log.action, log.object_type,
                      log.object_id, User.display_name)
            .outerjoin(User, User.id == log.actor_id).where(log.client_id == me),
            log.id, _access,
        ))  # fmt: skip
    return sections


async def _batches(
    session: AsyncSession, query: sa.Select[Any], id_column: Any, render: Render
) -> AsyncIterator[bytes]:
    after: uuid.UUID | None = None
    while True:
        page = query.order_by(id_column).limit(BATCH)
        if after is not None:
            page = page.where(id_column > after)
        rows = (await session.execute(page)).all()
        if not rows:
            return
        yield b",".join(dumps(render(row[0] if len(row) == 1 else row)) for row in rows)
        if len(rows) < BATCH:
            return
        after = rows[-1].id if len(rows[-1]) > 1 else rows[-1][0].id


async def export_document(principal: Principal) -> AsyncIterator[bytes]:
    """The export, as chunks of one JSON object."""
    async with snapshot_session() as session:
        user = await session.get(User, principal.user_id)
        if user is None:  # erased while the token was still in flight
            yield b"{}"
            return
        yield b'{"exported_at":' + dumps(utcnow()) + b',"account":' + dumps(_user(user))
        for name, query, id_column, render in _sections(principal):
            yield b',"' + name.encode() + b'":['
            first = True
            async for chunk in _batches(session, query, id_column, render):
                yield chunk if first else b"," + chunk
                first = False
            yield b"]"
        yield b"}"
