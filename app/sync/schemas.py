"""The sync feed's page (docs/integrators.md, "Sync: following every change")."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field

from app.core.openapi import Component
from app.core.schemas import ResponseBody
from app.encouragements.schemas import EncouragementOut
from app.goals.schemas import GoalOut
from app.reviews.schemas import ReviewOut
from app.steps.schemas import StepOut

ResourceType = Annotated[
    Literal["goal", "step", "review", "encouragement"], Component("ResourceType")
]
ChangeOp = Annotated[Literal["upsert", "delete"], Component("ChangeOp")]


class SyncChange(ResponseBody):
    type: ResourceType
    op: ChangeOp
    id: uuid.UUID
    data: GoalOut | StepOut | ReviewOut | EncouragementOut | None = Field(
        description="The object's document exactly as its own GET answers it; null for a deletion."
    )
    seq: int = Field(
        description="Position in the feed; entries never come in decreasing `seq` (the entries "
        "of one transaction share it, as do those of a first sync's snapshot)."
    )


class SyncPage(ResponseBody):
    changes: list[SyncChange]
    next_cursor: str = Field(description="Pass it back as `cursor` for what changed since.")
    has_more: bool = Field(description="True when more changes are waiting: ask again now.")
