from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, EmailStr, Field, ValidationInfo, field_validator

from app.core.schemas import RequestBody, has_control_characters

# Any string: a token that is not one (too short, odd characters) is an invalid token (400),
# never a validation error (422).
TokenField = Field(description="The `token` of the link the e-mail carried.")
NewPassword = Field(min_length=10, max_length=1024, json_schema_extra={"format": "password"})
Password = Field(max_length=1024, json_schema_extra={"format": "password"})


class TokenBody(RequestBody):
    """A body carrying a link's token: whatever the token holds, it is judged by the route
    (400 ``invalid-token``), not refused as a validation error."""

    @field_validator("token", mode="before", check_fields=False)
    @classmethod
    def _any_value_is_a_token(cls, value: object) -> object:
        # A number, null, list or object in place of the token is a token that is not one: the
        # empty string never matches a live token, so the route answers it as invalid.
        return value if isinstance(value, str) else ""

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: object, info: ValidationInfo) -> object:
        if info.field_name != "token" and isinstance(value, str) and has_control_characters(value):
            raise ValueError("must not contain control characters")
        return value


class PasswordResetRequest(RequestBody):
    email: EmailStr


class PasswordResetConfirm(TokenBody):
    token: str = TokenField
    new_password: str = NewPassword


class ChangePasswordRequest(RequestBody):
    current_password: str = Password
    new_password: str = NewPassword


class ChangeEmailRequest(RequestBody):
    new_email: EmailStr
    current_password: str = Password


class LinkTokenRequest(TokenBody):
    token: str = TokenField


class Accepted(BaseModel):
    """The request was taken; what it sends goes out by e-mail."""

    status: Literal["accepted"] = "accepted"
    detail: str


class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: dt.datetime
    last_used_at: dt.datetime | None = Field(
        description="When the session last logged in or refreshed its tokens."
    )
    user_agent: str | None
    current: bool = Field(description="The session of the token making this request.")


class SessionList(BaseModel):
    items: list[SessionOut]
