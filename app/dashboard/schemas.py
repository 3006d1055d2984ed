"""Dashboard bodies."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field

from app.core.schemas import ResponseBody


class ClientRef(ResponseBody):
    id: uuid.UUID
    display_name: str


class ClientSummary(ResponseBody):
    client: ClientRef
    active_goals: int = Field(description="Shared goals with status `active`.")
    steps_done_percent: int | None = Field(
        description="floor(100 * steps done / steps) over the active shared goals; null when "
        "they have no steps."
    )
    last_review_at: dt.datetime | None = Field(
        description="The latest review of any shared goal (any status)."
    )
    reviews_overdue: int = Field(
        description="Active shared goals whose `next_review_due` is before the client's today "
        "(in the client's timezone): a review due today is not overdue yet."
    )
    goals_lagging: int = Field(
        description="Active shared goals lagging behind (their `lagging` is true)."
    )
    gas_t_score: float | None = Field(
        description="Kiresuk-Sherman T-score (rho 0.3, one decimal) over the latest "
        "`gas_score` of each active shared goal that has one, weighted by `gas_weight`."
    )


class ClientSummaryPage(ResponseBody):
    items: list[ClientSummary]
    next_cursor: str | None
