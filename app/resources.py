"""The resources a change can be about, rendered by id: what a sync upsert, an export entry
and a webhook's ``data`` carry. Each renders its domain's one declaration (``GOAL``,
``STEP``, ...), so an object is the same document here as in its own GET; ``sql_document``
is the same document rendered by the database (SQL generated from that declaration by
``app.core.document_sql``), for the hot reads that join rows' JSON text without Python."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.document_sql import document_column
from app.encouragements.documents import (
    ENCOURAGEMENT,
    ENCOURAGEMENT_COLUMNS,
    encouragement_document,
)
from app.goals.documents import goal_document, goal_document_column
from app.models import Encouragement, Goal, Review, Step
from app.reviews.documents import REVIEW, REVIEW_COLUMNS, review_document
from app.steps.documents import STEP, STEP_COLUMNS, step_document

GOALS, STEPS, REVIEWS = Goal.__table__, Step.__table__, Review.__table__
_LIVE_GOAL = GOALS.c.deleted_at.is_(None)


@dataclass(frozen=True)
class Resource:
    select: sa.Select[Any]  # the live objects' document columns; ``id`` is filtered per call
    id_column: sa.ColumnElement[uuid.UUID]
    render: Callable[[Any], dict[str, Any]]
    # The document as JSON text rendered by the database, by dialect name (same JSON as render)
    sql_document: Callable[[str], sa.ColumnElement[str]]


RESOURCES: dict[str, Resource] = {
    "goal": Resource(
        sa.select(GOALS).where(_LIVE_GOAL),
        GOALS.c.id,
        goal_document,
        goal_document_column,
    ),
    "step": Resource(
        sa.select(*STEP_COLUMNS)
        .join(GOALS, GOALS.c.id == STEPS.c.goal_id)
        .where(STEPS.c.deleted_at.is_(None), _LIVE_GOAL),
        STEPS.c.id,
        step_document,
        lambda dialect: document_column(STEP, "steps", dialect),
    ),
    "review": Resource(
        sa.select(*REVIEW_COLUMNS).join(GOALS, GOALS.c.id == REVIEWS.c.goal_id).where(_LIVE_GOAL),
        REVIEWS.c.id,
        review_document,
        lambda dialect: document_column(REVIEW, "reviews", dialect),
    ),
    "encouragement": Resource(
        sa.select(*ENCOURAGEMENT_COLUMNS),
        Encouragement.__table__.c.id,
        encouragement_document,
        lambda dialect: document_column(ENCOURAGEMENT, "encouragements", dialect),
    ),
}
RESOURCE_TYPES: tuple[str, ...] = tuple(RESOURCES)


async def load_documents(
    session: AsyncSession, object_type: str, ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Each object's document exactly as its own GET answers it, keyed by id, in one query.

    Objects that no longer exist or are soft-deleted (a deleted goal or step, a step or review
    whose goal is deleted) are absent. No visibility rule is applied: the caller decides who
    may see what."""
    if not ids:
        return {}
    resource = RESOURCES[object_type]
    rows = await session.execute(resource.select.where(resource.id_column.in_(list(ids))))
    return {row.id: resource.render(row) for row in rows}
