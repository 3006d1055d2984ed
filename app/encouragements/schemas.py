"""Encouragement request and response bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import Field

from app.core.openapi import Component
from app.core.schemas import Message, RequestBody, ResponseBody


class EncouragementCreate(RequestBody):
    client_id: uuid.UUID | None = Field(
        default=None,
        description="The recipient. Required for a therapist (a linked client); a client may "
        "omit it or give their own id.",
    )
    goal_id: uuid.UUID | None = Field(
        default=None, description="A goal of that client the sender may read."
    )
    step_id: uuid.UUID | None = Field(
        default=None,
        description="A step of that client the sender may read (of `goal_id` when both are "
        "given; without `goal_id` the step's goal is filled in).",
    )
    message: Message


class EncouragementOut(ResponseBody):
    id: uuid.UUID
    client_id: uuid.UUID
    author_id: uuid.UUID | None = Field(description="Null for celebrations (from the system).")
    author_role: str | None
    goal_id: uuid.UUID | None
    step_id: uuid.UUID | None
    message: str
    kind: Annotated[Literal["note", "celebration"], Component("EncouragementKind")]
    read_at: dt.datetime | None
    created_at: dt.datetime


class EncouragementPage(ResponseBody):
    items: list[EncouragementOut]
    next_cursor: str | None
