"""Care invites and links as the API shows them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from app.core.schemas import RequestBody

InviteCode = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class InviteOut(BaseModel):
    code: str = Field(
        description="Single-use code the client redeems with POST /v1/care-links. Shown once."
    )
    expires_at: dt.datetime


class RedeemInviteRequest(RequestBody):
    code: InviteCode


class Party(BaseModel):
    id: uuid.UUID
    display_name: str


class CareLinkOut(BaseModel):
    id: uuid.UUID
    therapist: Party
    client: Party
    created_at: dt.datetime


class CareLinkPage(BaseModel):
    items: list[CareLinkOut]
    next_cursor: str | None
