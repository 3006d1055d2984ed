"""Base classes for request and response bodies."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    field_validator,
)

from app.core.errors import NotFound

# C0 control characters other than tab, newline and carriage return. PostgreSQL cannot store
# NUL in text (it answered 500) and SQLite stored it; neither belongs in anything people read.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
CONTROL_CHARACTER_MESSAGE = "must not contain control characters (other than tab and newlines)"


def has_control_characters(value: str) -> bool:
    return CONTROL_CHARACTERS.search(value) is not None


def _refuse_control_characters(value: Any) -> None:
    if isinstance(value, str):
        if CONTROL_CHARACTERS.search(value) is not None:
            raise ValueError(CONTROL_CHARACTER_MESSAGE)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _refuse_control_characters(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_control_characters(key)
            _refuse_control_characters(item)
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            _refuse_control_characters(item)


class RequestBody(BaseModel):
    """Unknown and read-only fields are refused (422): nothing is ignored or mass-assigned.
    No text anywhere in a request body may hold a control character (422 naming the field)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        _refuse_control_characters(value)
        return value


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

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339_only(value: Any) -> Any:
    # Pydantic alone also takes Unix timestamps ("0.5") and dates without a time.
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError("must be an RFC 3339 date-time such as '2026-01-31T09:30:00Z'")
    return value


def _within_calendar(value: dt.datetime) -> dt.datetime:
    return safe_utc_datetime(value)


# Far from the ends of the calendar, so that no database or conversion overflows on them.
EARLIEST = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)


def safe_utc_datetime(value: dt.datetime) -> dt.datetime:
    """``value`` in UTC; ``ValueError`` when naive or within a day of the calendar's ends
    (where converting, comparing or storing it overflows on some database)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must have a time zone offset")
    try:
        utc = value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is outside the supported range of dates") from None
    if not EARLIEST <= utc <= LATEST:
        raise ValueError("is outside the supported range of dates")
    return utc


Rfc3339DateTime = Annotated[
    AwareDatetime, BeforeValidator(_rfc3339_only), AfterValidator(_within_calendar)
]
"""A query parameter instant: an RFC 3339 string that converts to UTC without overflowing."""


def _plain_text(value: str | None) -> str | None:
    if value is not None and CONTROL_CHARACTERS.search(value) is not None:
        raise ValueError(CONTROL_CHARACTER_MESSAGE)
    return value


PlainText = AfterValidator(_plain_text)
"""For text outside request bodies (query parameters): no control characters."""


def parse_object_id(raw: str) -> uuid.UUID:
    """Ids are opaque: one that is not even a UUID simply does not exist (404, not 422)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("No such object.") from None
