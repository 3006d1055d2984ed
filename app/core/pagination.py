"""Keyset pagination: opaque cursors and the ``limit`` parameter (the ``Link`` header is
``app.core.http.link_header``)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import uuid
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from app.core.errors import BadRequest

Limit = Annotated[int, Query(ge=1, le=200, description="Page size, 1..200.")]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="The `next_cursor` of the previous page."),
]

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(*values: Any) -> str:
    raw = orjson.dumps([_plain(v) for v in values], option=orjson.OPT_UTC_Z)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """Parse a cursor made by ``encode_cursor`` with values of the given types; 400 if not."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("shape")
        return tuple(_parse(v, kind) for v, kind in zip(values, kinds, strict=True))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadRequest("The cursor is not valid for this list.") from None


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _parse(value: Any, kind: type) -> Any:
    if value is None:
        return None
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is dt.datetime:
        parsed = dt.datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed
    if kind is dt.date:
        return dt.date.fromisoformat(value)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError("int")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ValueError("str")
        return value
    raise TypeError(kind)
