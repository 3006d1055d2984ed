"""Steps as the API takes and shows them (docs/integrators.md, "Steps")."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from app.core.openapi import Component
from app.core.schemas import LongText, RequestBody, Title

StepStatus = Annotated[Literal["todo", "done"], Component("StepStatus")]
MAX_STEPS_PER_GOAL = 200


# The bound on the integer itself, so the document shows it as `minimum` (a `ge` on the whole
# optional field came out as a keyword JSON Schema does not know).
Position = Annotated[int, Field(ge=0)]


class StepCreate(RequestBody):
    title: Title
    notes: LongText | None = None
    due_date: dt.date | None = None
    position: Position | None = Field(
        default=None,
        description="0-based place in the goal's list; the steps from there on move down one. "
        "Left out or past the end: appended.",
    )


class StepUpdate(RequestBody):
    # title, status and position may be left out but not set to null (SkipJsonSchema: the
    # document shows them without `null`).
    title: Title | SkipJsonSchema[None] = None
    notes: LongText | None = None
    due_date: dt.date | None = None
    status: StepStatus | SkipJsonSchema[None] = Field(
        default=None, description="`done` sets `completed_at`; back to `todo` clears it."
    )
    position: Position | SkipJsonSchema[None] = Field(
        default=None,
        description="Move the step to this 0-based place (past the end: last); the steps in "
        "between close up.",
    )

    @field_validator("title", "status", "position", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value


class StepOut(BaseModel):
    id: uuid.UUID
    goal_id: uuid.UUID
    title: str
    notes: str | None
    status: StepStatus
    position: int = Field(description="0-based; a goal's steps are numbered without gaps.")
    due_date: dt.date | None
    completed_at: dt.datetime | None
    created_by: uuid.UUID | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class StepPage(BaseModel):
    items: list[StepOut]
    next_cursor: str | None
