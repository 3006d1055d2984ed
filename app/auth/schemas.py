from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, EmailStr, Field, StringConstraints

from app.auth.scopes import Scope
from app.core.openapi import Component
from app.core.schemas import RequestBody, ResponseBody, TimeZoneName

RoleName = Annotated[Literal["client", "therapist"], Component("Role")]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class RegisterRequest(RequestBody):
    email: EmailStr
    password: str = Field(min_length=10, max_length=1024)
    display_name: DisplayName
    role: RoleName
    timezone: TimeZoneName = "UTC"


class UserOut(ResponseBody):
    id: uuid.UUID
    email: str
    display_name: str
    role: RoleName
    timezone: str
    created_at: dt.datetime
    email_verified: bool = Field(
        description="Whether a link sent to `email` was followed (at registration, on demand "
        "with `POST /v1/me/verify-email`, or by confirming a change of address)."
    )


class UpdateMeRequest(RequestBody):
    display_name: DisplayName | None = None
    timezone: TimeZoneName | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    refresh_token: str
    scope: str


class OAuthError(BaseModel):
    """RFC 6749 section 5.2 error body."""

    error: Annotated[
        Literal[
            "invalid_request",
            "invalid_grant",
            "unsupported_grant_type",
            "invalid_scope",
            "invalid_client",
        ],
        Component("OAuthErrorCode"),
    ]
    error_description: str | None = None


class CreatePersonalTokenRequest(RequestBody):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    scopes: list[Scope] = Field(min_length=1, max_length=16)
    expires_in_days: int | None = Field(default=None, ge=1, le=365)


class PersonalTokenOut(ResponseBody):
    id: uuid.UUID
    name: str
    scopes: list[str]
    expires_at: dt.datetime | None
    created_at: dt.datetime
    last_used_at: dt.datetime | None = None


class PersonalTokenCreated(BaseModel):
    id: uuid.UUID
    name: str
    scopes: list[str]
    expires_at: dt.datetime | None
    token: str = Field(description="Shown once: store it now, it cannot be read again.")


class PersonalTokenPage(BaseModel):
    items: list[PersonalTokenOut]
    next_cursor: str | None
