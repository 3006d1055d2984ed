"""The goal document: declared once by ``GoalOut``; every renderer derives from ``GOAL``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.core.document_sql import document_column, document_sql
from app.core.documents import Document
from app.goals.schemas import GoalOut, GoalProgress


def percent_done(done: int, total: int) -> int:
    """Whole percent, rounded down: 100 only when every step is done (the goal's
    ``progress.percent``, the progress view and the dashboard)."""
    return done * 100 // total if total > 0 else 0


PROGRESS = Document(
    GoalProgress, computed={"percent": lambda g: percent_done(g.steps_done, g.steps_total)}
)
GOAL = Document(GoalOut, computed={"progress": PROGRESS.render})


def goal_document(row: Any) -> dict[str, Any]:
    """A goal row (Core row, ORM object or namespace) as its own GET answers it."""
    return GOAL.render(row)


# The one computed progress field; the others are counter columns of the same name.
_PERCENT = (
    "CASE WHEN goals.steps_total > 0 THEN goals.steps_done * 100 / goals.steps_total ELSE 0 END"
)


def goal_document_column(dialect: str) -> sa.ColumnElement[str]:
    """One goal's JSON as SQL, generated from the goal's declaration (``GOAL``), with
    ``progress`` from the counters."""
    progress = document_sql(PROGRESS, "goals", dialect, {"percent": _PERCENT})
    return document_column(GOAL, "goals", dialect, {"progress": progress})
