"""Review request and response bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import Field

from app.core.schemas import LongText, RequestBody, ResponseBody
from app.goals.schemas import AchievementStatus

Rating = Annotated[int, Field(strict=True, ge=0, le=10, description="How it is going, 0..10.")]
GasScore = Annotated[
    int,
    Field(
        strict=True,
        ge=-2,
        le=2,
        description="Goal Attainment Scaling: -2 much less than expected, -1 somewhat less, "
        "0 the expected outcome, +1 somewhat more, +2 much more.",
    ),
]


class ReviewCreate(RequestBody):
    rating: Rating
    gas_score: GasScore | None = None
    achievement_status: AchievementStatus | None = Field(
        default=None, description="FHIR goal-achievement code (`_` for `-`); sets the goal's."
    )
    reflection: LongText | None = Field(default=None, description="Where am I, what is lagging.")
    next_steps: LongText | None = None


class ReviewOut(ResponseBody):
    id: uuid.UUID
    goal_id: uuid.UUID
    author_id: uuid.UUID | None
    author_role: str
    rating: int
    gas_score: int | None
    achievement_status: AchievementStatus | None
    reflection: str | None
    next_steps: str | None
    created_at: dt.datetime


class ReviewPage(ResponseBody):
    items: list[ReviewOut]
    next_cursor: str | None
