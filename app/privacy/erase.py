"""``DELETE /v1/me``: the account and its content are erased for real.

A client's goals, steps, reviews, encouragements, links, tokens, webhooks and access log go with
the ``users`` row (the foreign keys cascade), soft-deleted rows included: what stays behind is
only ids, in the change rows that tell the therapists linked until now to delete what they
mirrored. A therapist's links end the same way; what they wrote for clients stays with the
clients, without an author (``author_id`` null, ``author_role`` still ``therapist``: "a former
therapist"), and the clients' feeds carry those objects again. Every token stops: refresh
tokens and personal access tokens go with the account. The lagging alerts about a client that
therapists already have stay in their feeds, rewritten so that they no longer name the client
(the goals answer 404); what was still pending for them (webhook deliveries, e-mails) goes
with the account."""

from __future__ import annotations

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import Principal
from app.auth.service import revoke_all_sessions
from app.changes.service import record_change, record_link_change
from app.models import CareLink, Encouragement, Goal, LoginFailure, Review, Step, User
from app.reminders.alerts import forget_client

log = structlog.get_logger("waypoint.privacy")


async def erase_account(session: AsyncSession, principal: Principal) -> None:
    me = principal.user_id
    user = (
        await session.execute(sa.select(User).where(User.id == me).with_for_update())
    ).scalar_one_or_none()
    if user is None:
        return  # already erased (a token still in flight)
    party = CareLink.client_id if principal.is_client else CareLink.therapist_id
    links = (
        await session.execute(
            sa.select(CareLink.therapist_id, CareLink.client_id).where(
                party == me, CareLink.ended_at.is_(None)
            )
        )
    ).all()
    for therapist_id, client_id in links:
        record_link_change(session, therapist_id, client_id)
    if principal.is_therapist:
        await _orphan_what_they_wrote(session, principal)
    else:
        await forget_client(session, me)
    await revoke_all_sessions(session, me)  # this worker forgets them at once too
    await session.execute(sa.delete(LoginFailure).where(LoginFailure.email_key == user.email_key))
    await session.execute(sa.delete(User).where(User.id == me))
    log.info("account_erased", user_id=str(me), role=str(principal.role), links_ended=len(links))


async def _orphan_what_they_wrote(session: AsyncSession, principal: Principal) -> None:
    """The goals, steps, reviews and encouragements a therapist wrote stay with their clients
    (the foreign keys set the author to null); their documents change, so the feeds carry
    them again."""
    me = principal.user_id
    written = (
        sa.select(Goal.client_id, sa.literal("goal"), Goal.id, Goal.id).where(Goal.created_by == me)
        .union_all(
            sa.select(Step.client_id, sa.literal("step"), Step.id, Step.goal_id)
            .where(Step.created_by == me),
            sa.select(Review.client_id, sa.literal("review"), Review.id, Review.goal_id)
            .where(Review.author_id == me),
            sa.select(Encouragement.client_id, sa.literal("encouragement"), Encouragement.id,
                      Encouragement.goal_id).where(Encouragement.author_id == me),
        )
    )  # fmt: skip
    for client_id, object_type, object_id, goal_id in await session.execute(written):
        record_change(
            session, client_id=client_id, object_type=object_type, object_id=object_id,
            op="upsert", goal_id=goal_id,
        )  # fmt: skip
