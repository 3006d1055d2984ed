"""How every response goes over the wire: JSON serialized once with orjson, the ``Link``
header of a page, and the ``ETag`` / ``If-Match`` / ``If-None-Match`` rules every single
object follows."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Header, Request, Response

from app.core.errors import PreconditionFailed

JSON = "application/json"

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='Only apply if the object is still at this version (`"<version>"`); '
        "412 otherwise.",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(alias="If-None-Match", description="304 when the object is still at this ETag."),
]


def dumps(content: Any) -> bytes:
    """The API's JSON: every body, sync upsert, export entry and webhook payload uses it, so
    one object is the same bytes wherever it appears (uuids as strings, timestamps RFC 3339
    UTC with ``Z``)."""
    return orjson.dumps(content, option=orjson.OPT_UTC_Z)


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(dumps(content), status_code=status_code, headers=headers, media_type=JSON)


def link_header(request: Request, next_cursor: str | None) -> dict[str, str] | None:
    """``Link: <...>; rel="next"`` for a page that has a next one (the same query, the next
    cursor)."""
    if next_cursor is None:
        return None
    return {"Link": f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'}


def set_next_link(request: Request, response: Response, next_cursor: str | None) -> None:
    response.headers.update(link_header(request, next_cursor) or {})


def page_response(request: Request, items: list[Any], next_cursor: str | None) -> Response:
    """A list page: ``{"items": [...], "next_cursor": ...}`` with its ``Link`` header."""
    return json_response(
        {"items": items, "next_cursor": next_cursor}, headers=link_header(request, next_cursor)
    )


def etag(version: int) -> str:
    return f'"{version}"'


def _tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def _opaque(tag: str) -> str:
    return tag if tag.startswith('"') else f'"{tag}"'  # tolerate a bare version number


def check_if_match(if_match: str | None, version: int) -> None:
    """``If-Match`` (strong comparison): a stale version is 412 and nothing changes."""
    if if_match is None:
        return
    current = etag(version)
    for tag in _tags(if_match):
        if tag == "*" or (not tag.startswith("W/") and _opaque(tag) == current):
            return
    raise PreconditionFailed(
        f"The object changed since you read it: its current ETag is {current}."
    )


def not_modified(if_none_match: str | None, version: int) -> bool:
    """``If-None-Match`` (weak comparison): true when the caller's copy is current."""
    if if_none_match is None:
        return False
    current = etag(version)
    return any(
        tag == "*" or _opaque(tag.removeprefix("W/")) == current for tag in _tags(if_none_match)
    )


def not_modified_response(version: int) -> Response:
    return Response(status_code=304, headers={"ETag": etag(version)})
