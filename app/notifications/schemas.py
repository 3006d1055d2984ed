"""Notification settings and the in-app feed as the API takes and shows them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator
from pydantic.json_schema import SkipJsonSchema

from app.core.openapi import Component
from app.core.schemas import RequestBody, ResponseBody
from app.dashboard.schemas import ClientRef

NotificationKind = Annotated[Literal["review_due", "goal_lagging"], Component("NotificationKind")]
ReminderHour = Annotated[StrictInt, Field(ge=0, le=23)]
NotNull = SkipJsonSchema[None]  # may be left out of a PATCH, never null


class NotificationSettingsOut(ResponseBody):
    review_reminders: bool = Field(
        description="Clients: remind me when a goal's review falls due (in-app, e-mail, and "
        "the `review.due` webhook event)."
    )
    reminder_hour: int = Field(
        ge=0, le=23, description="The hour, in the account's own timezone, reminders go out."
    )
    email: bool = Field(description="Send reminders and alerts by e-mail too (verified address).")
    include_goal_titles: bool = Field(
        description="Name the goals in e-mails; without it they say only how many."
    )
    lagging_alerts: bool = Field(description="Tell me when a goal starts lagging behind.")


class NotificationSettingsUpdate(RequestBody):
    review_reminders: StrictBool | NotNull = None
    reminder_hour: ReminderHour | NotNull = None
    email: StrictBool | NotNull = None
    include_goal_titles: StrictBool | NotNull = None
    lagging_alerts: StrictBool | NotNull = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out but not null")
        return value

    def changes(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class NotificationOut(ResponseBody):
    id: uuid.UUID
    kind: NotificationKind
    client: ClientRef = Field(description="The client the notification is about.")
    goal_ids: list[uuid.UUID] = Field(
        description="The goals it is about; a goal the caller may no longer see answers 404."
    )
    title: str
    body: str
    created_at: dt.datetime
    read_at: dt.datetime | None


class NotificationPage(ResponseBody):
    items: list[NotificationOut]
    next_cursor: str | None
