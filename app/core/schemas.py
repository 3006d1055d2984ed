"""Base classes for request and response bodies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints


class RequestBody(BaseModel):
    """Unknown and read-only fields are refused (422): nothing is ignored or mass-assigned."""

    model_config = ConfigDict(extra="forbid")


class ResponseBody(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _check_timezone(value: str) -> str:
    if value not in _timezones():
        raise ValueError("must be an IANA time zone name such as 'Europe/Berlin'")
    return value


_TZ_CACHE: set[str] = set()


def _timezones() -> set[str]:
    if not _TZ_CACHE:
        _TZ_CACHE.update(available_timezones())
    return _TZ_CACHE


TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=5000)]
Message = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
UtcDateTime = dt.datetime


def parse_object_id(raw: str) -> uuid.UUID:
    """Ids are opaque: one that is not even a UUID simply does not exist (404, not 422)."""
    from app.core.errors import NotFound

    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("No such object.") from None
