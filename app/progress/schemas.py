"""Progress bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from app.core.openapi import Component
from app.core.schemas import ResponseBody

Trend = Annotated[Literal["improving", "steady", "worsening"], Component("Trend")]


class ReviewPoint(ResponseBody):
    created_at: dt.datetime
    rating: int
    gas_score: int | None


class ProgressOut(ResponseBody):
    goal_id: uuid.UUID
    steps_total: int
    steps_done: int
    percent: int
    reviews: list[ReviewPoint]
    trend: Trend | None
