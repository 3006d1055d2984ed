"""Keyset pagination: opaque cursors and the ``limit`` parameter (the ``Link`` header is
``app.core.http.link_header``)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Query

from app.core.errors import BadRequest
from app.core.schemas import EARLIEST, LATEST, has_control_characters, safe_utc_datetime

Limit = Annotated[int, Query(ge=1, le=200, description="Page size, 1..200.")]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="The `next_cursor` of the previous page."),
]


@dataclass(frozen=True)
class Nullable:
    """A cursor value that may be null (``Nullable(uuid.UUID)``)."""

    kind: type


class BigInt(int):
    """A cursor value within a 64-bit BIGINT column (a feed's sequence number)."""


def encode_cursor(*values: Any) -> str:
    raw = orjson.dumps([_plain(v) for v in values], option=orjson.OPT_UTC_Z)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, *kinds: type | Nullable) -> tuple[Any, ...]:
    """Parse a cursor made by ``encode_cursor`` with values of the given types; 400 if not.

    Every value is checked for exactly the type it must have (a number where an id belongs
    raised ``AttributeError``) and times must convert to UTC within the calendar (a far date
    with a ``+14:00`` offset overflowed), so no cursor reaches a query it could break."""
    try:
        if not cursor.isascii():
            raise ValueError("not base64")
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("shape")
        return tuple(_parse(v, kind) for v, kind in zip(values, kinds, strict=True))
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest("The cursor is not valid for this list.") from None


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _parse(value: Any, kind: type | Nullable) -> Any:
    if isinstance(kind, Nullable):
        return None if value is None else _parse(value, kind.kind)
    if kind is BigInt:
        if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 2**63:
            raise ValueError("bigint")
        return value
    if kind is int:
        # Within a 32-bit INTEGER column, so PostgreSQL cannot refuse it mid-query.
        if not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 2**31:
            raise ValueError("int")
        return value
    if not isinstance(value, str):
        raise ValueError("str")
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is dt.datetime:
        return safe_utc_datetime(dt.datetime.fromisoformat(value))
    if kind is dt.date:
        day = dt.date.fromisoformat(value)
        if not EARLIEST.date() <= day <= LATEST.date():
            raise ValueError("out of range")
        return day
    if kind is str:
        if has_control_characters(value):  # PostgreSQL cannot even compare text with NUL
            raise ValueError("control characters")
        return value
    raise TypeError(kind)
