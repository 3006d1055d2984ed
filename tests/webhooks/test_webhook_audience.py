"""The webhook audience rule has one builder and two forms kept as driver text
(``app/webhooks/repository.py``): every form must pick the same webhooks as the rule says.

Random worlds of two clients, two therapists, care links (none, live, ended) and webhooks
(owner, subscribed types, active); one event about a client's object. The rule, in Python
here: the client's own active webhooks subscribed to the type, and those of therapists whose
link is live, when the object is shared or theirs. Checked against: the "anyone listening?"
question (SQLite's inline text, PostgreSQL's statement), the outbox's INSERT (PostgreSQL
writes only events someone hears), and the fan-out's INSERT ... SELECT (both databases)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.core.clock import utcnow
from app.core.sessions import new_session
from app.models import CareLink, User, Webhook, WebhookDelivery, WebhookEvent
from app.webhooks import repository
from app.webhooks.fanout import fan_out_all

EVENTS = WebhookEvent.__table__
TYPES = ("goal.created", "goal.updated")
CLIENTS, THERAPISTS = (0, 1), (2, 3)
NO_LINK, LIVE, ENDED = "none", "live", "ended"

worlds = st.fixed_dictionaries(
    {
        "links": st.tuples(*(st.sampled_from((NO_LINK, LIVE, ENDED)) for _ in range(4))),
        "hooks": st.lists(
            st.tuples(
                st.integers(0, 3),
                st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True),
                st.booleans(),
            ),
            max_size=6,
        ),
        "client": st.sampled_from(CLIENTS),
        "type": st.sampled_from(TYPES),
        "shared": st.booleans(),
        "author": st.sampled_from((None, *THERAPISTS)),
    }
)


def _link_state(world: dict[str, Any], therapist: int, client: int) -> str:
    return world["links"][(therapist - 2) * 2 + client]


def _audience(world: dict[str, Any]) -> list[int]:
    """The indexes of the hooks that hear the event, by the rule as documented."""
    heard = []
    for index, (owner, types, active) in enumerate(world["hooks"]):
        if not active or world["type"] not in types:
            continue
        linked = owner in THERAPISTS and _link_state(world, owner, world["client"]) == LIVE
        if owner == world["client"] or (linked and (world["shared"] or world["author"] == owner)):
            heard.append(index)
    return heard


def _anyone(world: dict[str, Any]) -> bool:
    """Any active webhook of the client or of a therapist linked to them now (any type)."""
    client = world["client"]
    return any(
        active
        and (owner == client or (owner in THERAPISTS and _link_state(world, owner, client) == LIVE))
        for owner, _, active in world["hooks"]
    )


async def _build(world: dict[str, Any], users: list[uuid.UUID], now: dt.datetime) -> list[Any]:
    before = now - dt.timedelta(hours=1)
    hooks = [uuid.uuid4() for _ in world["hooks"]]
    async with new_session(write=True) as session:
        for table in (WebhookDelivery, WebhookEvent, Webhook, CareLink):
            await session.execute(sa.delete(table.__table__))
        links = [
            {
                "id": uuid.uuid4(),
                "therapist_id": users[therapist],
                "client_id": users[client],
                "created_at": before,
                "ended_at": now - dt.timedelta(minutes=30) if state == ENDED else None,
            }
            for therapist in THERAPISTS
            for client in CLIENTS
            if (state := _link_state(world, therapist, client)) != NO_LINK
        ]
        if links:
            await session.execute(sa.insert(CareLink.__table__), links)
        if hooks:
            await session.execute(
                sa.insert(Webhook.__table__),
                [
                    {
                        "id": hook_id, "user_id": users[owner], "url": "https://example.com/h",
                        "events": types, "secret": "s" * 32, "active": active,
                        "failing_since": None, "disabled_at": None, "created_at": before,
                    }
                    for hook_id, (owner, types, active) in zip(hooks, world["hooks"], strict=True)
                ],
            )  # fmt: skip
        await session.commit()
    return hooks


async def _users() -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(4)]
    now = utcnow()
    async with new_session(write=True) as session:
        await session.execute(
            sa.insert(User.__table__),
            [
                {
                    "id": user_id, "email": f"{user_id}@example.com",
                    "email_key": f"{user_id}@example.com", "display_name": "Someone",
                    "role": "client" if n in CLIENTS else "therapist", "timezone": "UTC",
                    "password_hash": "x", "created_at": now, "updated_at": now,
                }
                for n, user_id in enumerate(ids)
            ],
        )  # fmt: skip
        await session.commit()
    return ids


async def test_every_form_of_the_audience_rule_picks_the_same_webhooks(app_instance) -> None:
    users: list[uuid.UUID] = []

    async def check(world: dict[str, Any]) -> None:
        if not users:
            users.extend(await _users())
        now = utcnow()
        hooks = await _build(world, users, now)
        client = users[world["client"]]
        expected = {hooks[index] for index in _audience(world)}

        async with new_session(write=True) as session:
            asked = await repository.anyone_listens(session, [client], worth_asking=True)
            assert asked == _anyone(world)
            author = None if world["author"] is None else users[world["author"]]
            row = {
                "event": world["type"], "body": "{}", "client_id": client,
                "shared": world["shared"], "author_id": author, "created_at": now,
            }  # fmt: skip
            await repository.insert_events(session, [row], now)
            await session.commit()
        async with new_session(write=False) as session:
            events = await session.scalar(sa.select(sa.func.count()).select_from(EVENTS))
        if session.bind.dialect.name == "postgresql":
            assert events == (1 if expected else 0)  # the outbox applies the rule itself
        else:
            assert events == 1  # SQLite writes it; the fan-out decides

        assert await fan_out_all() == len(expected)
        async with new_session(write=False) as session:
            found = await session.execute(sa.select(WebhookDelivery.__table__.c.webhook_id))
            assert {hook_id for (hook_id,) in found} == expected

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(world=worlds)
    @example(  # a private object: the client's hooks, and its author's, hear it
        world={
            "links": (LIVE, LIVE, LIVE, ENDED), "client": 0, "type": TYPES[0],
            "hooks": [(2, list(TYPES), True), (3, [TYPES[0]], True), (0, [TYPES[0]], True)],
            "shared": False, "author": 2,
        }
    )  # fmt: skip
    def examples(world: dict[str, Any]) -> None:
        anyio.from_thread.run(check, world)

    await anyio.to_thread.run_sync(examples)
