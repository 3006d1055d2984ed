"""The step document: declared once by ``StepOut``."""

from __future__ import annotations

from typing import Any

from app.core.documents import Document
from app.models import Step
from app.steps.schemas import StepOut

STEP = Document(StepOut)
STEP_COLUMNS = tuple(Step.__table__.c[name] for name in STEP.columns)


def step_document(row: Any) -> dict[str, Any]:
    """A step row (Core row, ORM object or namespace) as its own GET answers it."""
    return STEP.render(row)
