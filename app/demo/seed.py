"""``waypoint seed-demo``: a therapist and a client with goals worth looking at.

Everything goes through the services, in one transaction, as the API would do it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import Principal
from app.auth.schemas import RegisterRequest
from app.auth.scopes import RESOURCE_SCOPES, Role
from app.auth.service import register
from app.carelinks.service import create_invite, redeem_invite
from app.core.clock import utcnow
from app.core.unit_of_work import CommitContext, run_before_commit_hooks
from app.encouragements.schemas import EncouragementCreate
from app.encouragements.service import send
from app.goals.access import goal_from_path
from app.goals.schemas import GoalCreate
from app.goals.service import create_goal
from app.models import Goal, Step, User
from app.reviews.schemas import ReviewCreate
from app.reviews.service import add_review
from app.steps.schemas import StepCreate, StepUpdate
from app.steps.service import create_step, update_step
from app.wiring import BEFORE_COMMIT

THERAPIST_EMAIL = "therapist@demo.waypoint.example"
CLIENT_EMAIL = "client@demo.waypoint.example"


@dataclass(frozen=True)
class DemoLogin:
    role: str
    email: str
    password: str | None  # None: the account already existed (its password is unchanged)


@dataclass(frozen=True)
class DemoResult:
    created: bool
    logins: list[DemoLogin]
    goal_ids: list[str]


def _principal(user: User) -> Principal:
    role = Role(user.role)
    return Principal(user.id, role, frozenset({str(role), *(str(s) for s in RESOURCE_SCOPES)}))


async def _run_before_commit_hooks(session: AsyncSession) -> None:
    """What the unit of work writes before a request's COMMIT (the change log, ...)."""
    await run_before_commit_hooks(CommitContext(session, "SCRIPT", 201), BEFORE_COMMIT)


async def seed_demo(session: AsyncSession, *, now: dt.datetime | None = None) -> DemoResult:
    """Create the demo accounts and their story; a second run finds them and does nothing."""
    existing = (
        await session.scalars(
            sa.select(User.email).where(User.email_key.in_([THERAPIST_EMAIL, CLIENT_EMAIL]))
        )
    ).all()
    if existing:
        return DemoResult(
            created=False,
            logins=[
                DemoLogin("therapist", THERAPIST_EMAIL, None),
                DemoLogin("client", CLIENT_EMAIL, None),
            ],
            goal_ids=[],
        )
    now = now or utcnow()
    therapist_password = secrets.token_urlsafe(12)
    client_password = secrets.token_urlsafe(12)
    therapist = await register(
        session,
        RegisterRequest(
            email=THERAPIST_EMAIL,
            password=therapist_password,
            display_name="Dr. Maya Lindqvist",
            role="therapist",
            timezone="Europe/Berlin",
        ),
    )
    person = await register(
        session,
        RegisterRequest(
            email=CLIENT_EMAIL,
            password=client_password,
            display_name="Sam",
            role="client",
            timezone="Europe/Berlin",
        ),
    )
    doctor, sam = _principal(therapist), _principal(person)
    invite = await create_invite(session, doctor)
    await redeem_invite(session, sam, invite.code)

    stories = [
        (
            GoalCreate(
                title="Feel content again",
                motivation="Waking up without dread. Enjoying coffee on the balcony, calling "
                "friends back, laughing at silly films again.",
                success_criteria="Most mornings I feel okay about the day ahead, and I do one "
                "thing just for joy every week.",
                category="wellbeing",
                priority="high",
                review_every_days=7,
                gas_weight=3,
            ),
            [
                "Walk outside for 20 minutes",
                "Call Jonas back",
                "Write down three good things",
                "Plan a Saturday for joy",
                "Cook a real dinner twice a week",
            ],
            3,
            [
                (24, 4, -1, "no_change", "Hard week. Walking helped a bit."),
                (10, 6, 0, "improving", "Mornings feel lighter. Calling Jonas was good."),
            ],
        ),
        (
            GoalCreate(
                title="Sleep before midnight",
                motivation="Having energy in the afternoon instead of crashing.",
                success_criteria="In bed by 23:30 five nights a week, for a month.",
                category="health",
                review_every_days=14,
                gas_weight=2,
            ),
            ["Phone out of the bedroom", "Same wake-up time every day", "Wind-down reading"],
            1,
            [(12, 5, 0, "in_progress", "Phone outside works; the reading not yet.")],
        ),
        (
            GoalCreate(
                title="Say no without guilt",
                motivation="Time for myself without feeling I let people down.",
                category="relationships",
                review_every_days=14,
            ),
            ["Notice when I want to say no", "Practise one small no"],
            0,
            [],
        ),
    ]
    goal_ids = []
    for data, step_titles, done_count, reviews in stories:
        document = await create_goal(session, sam, data)
        goal_id = document["id"]
        goal_ids.append(str(goal_id))
        goal = await session.get(Goal, goal_id)
        assert goal is not None
        goal.created_at = now - dt.timedelta(days=35)  # a story needs a past
        await session.flush()
        for title in step_titles:
            goal = await goal_from_path(session, sam, goal_id, for_update=True)
            await create_step(session, sam, goal, StepCreate(title=title))
        steps = (
            await session.scalars(
                sa.select(Step).where(Step.goal_id == goal_id).order_by(Step.position)
            )
        ).all()
        for i, step in enumerate(steps[:done_count]):
            await update_step(session, sam, str(step.id), StepUpdate(status="done"), None)
            step.completed_at = now - dt.timedelta(days=30 - 8 * i)
            await session.flush()
        for days_ago, rating, gas, status, reflection in reviews:
            await add_review(
                session,
                sam,
                await goal_from_path(session, sam, goal_id, for_update=True),
                ReviewCreate(
                    rating=rating, gas_score=gas, achievement_status=status, reflection=reflection
                ),
                at=now - dt.timedelta(days=days_ago),
            )
    await send(
        session,
        doctor,
        EncouragementCreate(
            client_id=person.id,
            goal_id=goal_ids[0],
            message="Sam, calling Jonas back took courage. I noticed. Keep the walks going!",
        ),
    )
    await session.flush()
    await _run_before_commit_hooks(session)
    return DemoResult(
        created=True,
        logins=[
            DemoLogin("therapist", THERAPIST_EMAIL, therapist_password),
            DemoLogin("client", CLIENT_EMAIL, client_password),
        ],
        goal_ids=goal_ids,
    )
