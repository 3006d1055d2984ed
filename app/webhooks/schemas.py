"""Webhooks as the API takes and shows them (docs/integrators.md, "Webhooks")."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator

from app.core.openapi import Component
from app.core.schemas import RequestBody
from app.webhooks.events import EventType

WebhookUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
DeliveryStatus = Annotated[
    Literal["pending", "delivered", "failed"], Component("WebhookDeliveryStatus")
]


class WebhookCreate(RequestBody):
    url: WebhookUrl = Field(description="http:// or https:// URL that receives the POSTs.")
    events: list[EventType] = Field(min_length=1, description="The events to receive.")

    @field_validator("events")
    @classmethod
    def _once_each(cls, events: list[str]) -> list[str]:
        return list(dict.fromkeys(events))


class WebhookCreated(BaseModel):
    id: uuid.UUID
    url: str
    events: list[EventType]
    secret: str = Field(description="Signs every delivery. Shown this once: keep it.")
    created_at: dt.datetime


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[EventType]
    active: bool = Field(description="False once disabled after days of failed deliveries.")
    disabled_at: dt.datetime | None
    created_at: dt.datetime


class WebhookPage(BaseModel):
    items: list[WebhookOut]
    next_cursor: str | None


class DeliveryOut(BaseModel):
    id: uuid.UUID = Field(description="Also the `Waypoint-Delivery` header and the body's id.")
    event: EventType
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: dt.datetime | None = Field(description="When pending: the next attempt.")
    delivered_at: dt.datetime | None
    created_at: dt.datetime


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None
