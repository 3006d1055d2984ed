"""JSON request bodies with a key given twice are refused (422), not read as "the last wins".

A client that sends ``visibility`` twice should hear about it. The body is parsed here once,
with a check on every object's keys, and handed to FastAPI as the request's parsed JSON, so
it costs one parse, as before, and the key check little more. Bodies that are not valid
JSON are left to FastAPI, which answers them as it always has.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return result


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # FastAPI reads a body without a content type as JSON
    media_type = content_type.split(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def parse_json_body(request: Request) -> None:
    """Parse a JSON body strictly before FastAPI reads it (``Request.json()`` keeps it)."""
    if request.method not in ("POST", "PUT", "PATCH") or not _is_json(
        request.headers.get("content-type")
    ):
        return
    body = await request.body()
    if not body:
        return
    try:
        parsed = json.loads(body, object_pairs_hook=_unique_keys)
    except DuplicateKey as duplicate:
        raise RequestValidationError(
            [
                {
                    "type": "duplicate_key",
                    "loc": ("body", duplicate.key),
                    "msg": f"The key '{duplicate.key}' appears more than once in an object.",
                }
            ]
        ) from None
    except ValueError:  # not JSON (or not UTF-8): FastAPI answers it as before
        return
    request._json = parsed  # what Starlette's Request.json() returns from now on
