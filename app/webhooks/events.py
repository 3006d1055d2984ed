"""What happened, as webhook events: services record them, the outbox writes the deliveries.

A service calls ``record_event`` next to ``record_change``, with the object's document exactly
as its own GET renders it (or ``{id}`` for a deletion) and who besides the client may see the
object at this moment: the linked therapists when it is on a shared goal, or only its author
(an encouragement a therapist sent). The outbox (``outbox.py``) turns them into one delivery
per subscribed webhook just before COMMIT, in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy.ext.asyncio import AsyncSession

EventType = Literal[
    "goal.created",
    "goal.updated",
    "goal.deleted",
    "step.completed",
    "review.created",
    "encouragement.created",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
PENDING_EVENTS = "waypoint.webhook_events"


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    client_id: uuid.UUID
    data: dict[str, Any]
    shared: bool  # linked therapists may see the object (it is on a shared goal)
    author_id: uuid.UUID | None  # also seen by its author while linked (encouragements)


def record_event(
    session: AsyncSession,
    event_type: EventType,
    *,
    client_id: uuid.UUID,
    data: dict[str, Any],
    shared: bool,
    author_id: uuid.UUID | None = None,
) -> None:
    session.info.setdefault(PENDING_EVENTS, []).append(
        Event(event_type, client_id, data, shared, author_id)
    )
