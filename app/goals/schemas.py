"""Goals as the API takes and shows them (docs/integrators.md, "Goals")."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic.json_schema import SkipJsonSchema

from app.core.openapi import Component
from app.core.schemas import LongText, RequestBody, Title

Priority = Annotated[Literal["low", "medium", "high"], Component("Priority")]
Visibility = Annotated[Literal["shared", "private"], Component("Visibility")]
GoalStatus = Annotated[
    Literal["proposed", "active", "on_hold", "completed", "cancelled"], Component("GoalStatus")
]
AchievementStatus = Annotated[
    Literal[
        "in_progress",
        "improving",
        "worsening",
        "no_change",
        "achieved",
        "sustaining",
        "not_achieved",
        "no_progress",
        "not_attainable",
    ],
    Component("AchievementStatus"),
]
Category = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
GasText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
ReviewEveryDays = Annotated[int, Field(ge=1, le=365)]
GasWeight = Annotated[int, Field(ge=1, le=9, description="Importance x difficulty, 1..9.")]


GAS_KEYS = ("-2", "-1", "0", "1", "2")


def _gas_levels_schema(schema: dict[str, Any]) -> None:
    # Declared as a map whose keys are exactly the five levels, not as five properties: client
    # generators name a property after its key, and "-2" and "2" would both become `2`.
    level = {"type": "string", "minLength": 1, "maxLength": 500}
    schema.pop("properties")
    schema.pop("required")
    schema["propertyNames"] = {"enum": list(GAS_KEYS)}
    schema["additionalProperties"] = level
    schema["minProperties"] = schema["maxProperties"] = len(GAS_KEYS)


class GasLevels(BaseModel):
    """Goal Attainment Scaling: what each outcome looks like for this goal. Exactly the keys
    "-2" (much less than expected), "-1" (somewhat less), "0" (the expected outcome),
    "1" (somewhat more) and "2" (much more), each 1..500 characters."""

    model_config = ConfigDict(
        extra="forbid",
        serialize_by_alias=True,
        validate_by_alias=True,
        json_schema_extra=_gas_levels_schema,
    )

    much_less: GasText = Field(alias="-2", description="Much less than expected.")
    somewhat_less: GasText = Field(alias="-1", description="Somewhat less than expected.")
    expected: GasText = Field(alias="0", description="The expected outcome.")
    somewhat_more: GasText = Field(alias="1", description="Somewhat more than expected.")
    much_more: GasText = Field(alias="2", description="Much more than expected.")

    def as_json(self) -> dict[str, str]:
        return self.model_dump(by_alias=True)


class GoalCreate(RequestBody):
    title: Title
    description: LongText | None = None
    motivation: LongText | None = Field(
        default=None, description="The why: what life looks like when the goal is met."
    )
    success_criteria: LongText | None = Field(
        default=None, description="How the client will know the goal is met."
    )
    category: Category | None = None
    priority: Priority | None = None
    target_date: dt.date | None = None
    review_every_days: ReviewEveryDays | None = None
    visibility: Visibility = "shared"
    client_id: uuid.UUID | None = Field(
        default=None, description="Required for therapists: a linked client. Clients: yourself."
    )
    external_id: ExternalId | None = Field(
        default=None, description="An integrator's id, unique per client."
    )
    gas_levels: GasLevels | None = None
    gas_weight: GasWeight = 1


# Fields that may be left out of a PATCH but never set to null.
NOT_NULLABLE = ("title", "status", "visibility", "gas_weight")
# May be left out but not set to null: the document shows them without `null`.
NotNull = SkipJsonSchema[None]


class GoalUpdate(RequestBody):
    title: Title | NotNull = None
    description: LongText | None = None
    motivation: LongText | None = None
    success_criteria: LongText | None = None
    category: Category | None = None
    priority: Priority | None = None
    status: GoalStatus | NotNull = None
    achievement_status: AchievementStatus | None = None
    visibility: Visibility | NotNull = None
    target_date: dt.date | None = None
    review_every_days: ReviewEveryDays | None = None
    external_id: ExternalId | None = None
    gas_levels: GasLevels | None = None
    gas_weight: GasWeight | NotNull = None

    @field_validator(*NOT_NULLABLE, mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the caller sent, as column values."""
        values = {name: getattr(self, name) for name in self.model_fields_set}
        if isinstance(values.get("gas_levels"), GasLevels):
            values["gas_levels"] = values["gas_levels"].as_json()
        return values


class GoalProgress(BaseModel):
    steps_total: int
    steps_done: int
    percent: int = Field(ge=0, le=100, description="Steps done, in whole percent.")
    latest_rating: int | None
    latest_gas_score: int | None


class GoalOut(BaseModel):
    id: uuid.UUID
    client_id: uuid.UUID
    created_by: uuid.UUID | None
    title: str
    description: str | None
    motivation: str | None
    success_criteria: str | None
    category: str | None
    priority: Priority | None
    status: GoalStatus
    achievement_status: AchievementStatus | None
    visibility: Visibility
    target_date: dt.date | None
    review_every_days: int | None
    next_review_due: dt.date | None
    external_id: str | None
    gas_levels: GasLevels | None
    gas_weight: int
    completed_at: dt.datetime | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    progress: GoalProgress


class GoalPage(BaseModel):
    items: list[GoalOut]
    next_cursor: str | None
