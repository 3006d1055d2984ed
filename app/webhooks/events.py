"""What happened, as webhook events: services record them, the outbox writes them.

A service calls ``record_event`` next to ``record_change`` with the object and who besides the
client may see it at this moment: the linked therapists when it is on a shared goal, or only
its author (an encouragement a therapist sent). The outbox (``outbox.py``) writes each event
someone listens to just before COMMIT, in the same transaction, and the delivery worker turns
it into one delivery per subscribed webhook (``fanout.py``); the ``data`` is the object's
document as its own GET answers it, loaded at the commit by
``app.resources.load_documents`` (one query per type), unless the service hands over the
document it already rendered from the same declaration (a new goal, the hottest write), or
``{id}`` for a deletion.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.openapi import Component

_EventType = Literal[
    "goal.created",
    "goal.updated",
    "goal.deleted",
    "step.completed",
    "review.created",
    "encouragement.created",
    "review.due",
    "goal.lagging",
]
EventType = Annotated[_EventType, Component("WebhookEvent")]
EVENT_TYPES: tuple[str, ...] = get_args(_EventType)
PENDING_EVENTS = "waypoint.webhook_events"


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    object_type: str
    object_id: uuid.UUID
    client_id: uuid.UUID
    data: dict[str, Any] | None  # None: loaded at commit
    shared: bool  # linked therapists may see the object (it is on a shared goal)
    author_id: uuid.UUID | None  # also seen by its author while linked (encouragements)


def new_event(
    event_type: EventType,
    *,
    object_id: uuid.UUID,
    client_id: uuid.UUID,
    shared: bool,
    author_id: uuid.UUID | None = None,
    document: dict[str, Any] | None = None,
) -> Event:
    object_type = event_type.split(".", 1)[0]
    return Event(event_type, object_type, object_id, client_id, document, shared, author_id)


def record_event(
    session: AsyncSession,
    event_type: EventType,
    *,
    object_id: uuid.UUID,
    client_id: uuid.UUID,
    shared: bool,
    author_id: uuid.UUID | None = None,
    document: dict[str, Any] | None = None,
) -> None:
    event = new_event(
        event_type,
        object_id=object_id,
        client_id=client_id,
        shared=shared,
        author_id=author_id,
        document=document,
    )
    record(session, event)


def record(session: AsyncSession, event: Event) -> None:
    """For the outbox's before-commit hook."""
    session.info.setdefault(PENDING_EVENTS, []).append(event)
