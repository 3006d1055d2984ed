"""Goals as the API takes and shows them (docs/integrators.md, "Goals")."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    field_validator,
)
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


class GoalProgress(BaseModel):
    steps_total: int
    steps_done: int
    percent: int = Field(ge=0, le=100, description="Steps done, in whole percent.")
    latest_rating: int | None
    latest_gas_score: int | None


# How a request takes a field (``GoalField.create`` / ``GoalField.patch``).
REQUIRED = "required"  # GoalCreate: must be given
OPTIONAL = "optional"  # GoalCreate: may be left out (None); GoalUpdate: may be set to null
NOT_NULL = "not null"  # GoalUpdate: may be left out but not set to null
# May be left out but not set to null: the document shows them without `null`.
NotNull = SkipJsonSchema[None]


@dataclass(frozen=True)
class GoalField:
    """One field of the goal document and how requests write it."""

    shown: Any  # its type in the document (``GoalOut``)
    takes: Any = None  # the type a request body validates (None: read-only)
    create: Any = None  # ``REQUIRED``, ``OPTIONAL``, a default value, or None: not on create
    patch: str | None = None  # ``OPTIONAL``, ``NOT_NULL``, or None: not on update
    description: str | None = None  # in the request bodies
    csv: bool = True  # a column of ``waypoint import`` (when it is on create)


# The goal, declared once, in the document's order: ``GoalOut`` shows every field,
# ``GoalCreate`` and ``GoalUpdate`` take the writable ones (in the same order), and the CSV
# importer's columns are the created ones (``app.scripts.importer``). A new field is one line
# here (and its column, its migration and ``openapi/openapi.json``).
GOAL_FIELDS: dict[str, GoalField] = {
    "id": GoalField(uuid.UUID),
    "client_id": GoalField(
        uuid.UUID,
        uuid.UUID,
        create=OPTIONAL,
        description="Required for therapists: a linked client. Clients: yourself.",
    ),
    "created_by": GoalField(uuid.UUID | None),
    "title": GoalField(str, Title, create=REQUIRED, patch=NOT_NULL),
    "description": GoalField(str | None, LongText, create=OPTIONAL, patch=OPTIONAL),
    "motivation": GoalField(
        str | None,
        LongText,
        create=OPTIONAL,
        patch=OPTIONAL,
        description="The why: what life looks like when the goal is met.",
    ),
    "success_criteria": GoalField(
        str | None,
        LongText,
        create=OPTIONAL,
        patch=OPTIONAL,
        description="How the client will know the goal is met.",
    ),
    "category": GoalField(str | None, Category, create=OPTIONAL, patch=OPTIONAL),
    "priority": GoalField(Priority | None, Priority, create=OPTIONAL, patch=OPTIONAL),
    "status": GoalField(GoalStatus, GoalStatus, patch=NOT_NULL),
    "achievement_status": GoalField(AchievementStatus | None, AchievementStatus, patch=OPTIONAL),
    "visibility": GoalField(Visibility, Visibility, create="shared", patch=NOT_NULL),
    "target_date": GoalField(dt.date | None, dt.date, create=OPTIONAL, patch=OPTIONAL),
    "review_every_days": GoalField(int | None, ReviewEveryDays, create=OPTIONAL, patch=OPTIONAL),
    "next_review_due": GoalField(dt.date | None),
    # An active goal lagging behind (docs/reminders.md): set by reviews and the scheduler.
    "lagging": GoalField(bool),
    "external_id": GoalField(
        str | None,
        ExternalId,
        create=OPTIONAL,
        patch=OPTIONAL,
        description="An integrator's id, unique per client.",
    ),
    # Not CSV columns: the levels are an object, the weight was never imported.
    "gas_levels": GoalField(
        GasLevels | None, GasLevels, create=OPTIONAL, patch=OPTIONAL, csv=False
    ),
    "gas_weight": GoalField(int, GasWeight, create=1, patch=NOT_NULL, csv=False),
    "completed_at": GoalField(dt.datetime | None),
    "version": GoalField(int),
    "created_at": GoalField(dt.datetime),
    "updated_at": GoalField(dt.datetime),
    "progress": GoalField(GoalProgress),
}
# Fields that may be left out of a PATCH but never set to null.
NOT_NULLABLE = tuple(name for name, f in GOAL_FIELDS.items() if f.patch == NOT_NULL)
CREATED = tuple(name for name, f in GOAL_FIELDS.items() if f.create is not None)


def _described(f: GoalField, **default: Any) -> Any:
    # A description given here adds to the one the type carries (``GasWeight``'s), not over it.
    return Field(**default, **({"description": f.description} if f.description else {}))


def _created(f: GoalField) -> tuple[Any, Any]:
    if f.create == REQUIRED:
        return f.takes, _described(f)
    if f.create == OPTIONAL:
        return f.takes | None, _described(f, default=None)
    return f.takes, _described(f, default=f.create)


def _patched(f: GoalField) -> tuple[Any, Any]:
    nothing = None if f.patch == OPTIONAL else NotNull
    return f.takes | nothing, _described(f, default=None)


class _GoalUpdateRules(RequestBody):
    @field_validator(*NOT_NULLABLE, mode="before", check_fields=False)
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


GoalCreate = create_model(
    "GoalCreate",
    __base__=RequestBody,
    __module__=__name__,
    **{name: _created(f) for name, f in GOAL_FIELDS.items() if f.create is not None},
)
GoalUpdate = create_model(
    "GoalUpdate",
    __base__=_GoalUpdateRules,
    __module__=__name__,
    **{name: _patched(f) for name, f in GOAL_FIELDS.items() if f.patch is not None},
)
GoalOut = create_model(
    "GoalOut",
    __base__=BaseModel,
    __module__=__name__,
    **{name: (f.shown, ...) for name, f in GOAL_FIELDS.items()},
)


class GoalPage(BaseModel):
    items: list[GoalOut]
    next_cursor: str | None
