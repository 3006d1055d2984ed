"""The goal document: declared once by ``GoalOut``; every renderer derives from ``GOAL``."""

from __future__ import annotations

from typing import Any

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
