"""How goals (and steps) go over the wire: one dict per object, serialized once with orjson,
and the ``ETag`` / ``If-Match`` / ``If-None-Match`` rules every single object follows."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Header, Response

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


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_UTC_Z),
        status_code=status_code,
        headers=headers,
        media_type=JSON,
    )


def percent(done: int, total: int) -> int:
    """Whole percent, rounded down: 100 only when every step is done."""
    return done * 100 // total if total else 0


def goal_document(g: Any) -> dict[str, Any]:
    """A goal row (Core row, ORM object or namespace) as the API shows it."""
    total, done = g.steps_total, g.steps_done
    return {
        "id": g.id,
        "client_id": g.client_id,
        "created_by": g.created_by,
        "title": g.title,
        "description": g.description,
        "motivation": g.motivation,
        "success_criteria": g.success_criteria,
        "category": g.category,
        "priority": g.priority,
        "status": g.status,
        "achievement_status": g.achievement_status,
        "visibility": g.visibility,
        "target_date": g.target_date,
        "review_every_days": g.review_every_days,
        "next_review_due": g.next_review_due,
        "external_id": g.external_id,
        "gas_levels": g.gas_levels,
        "gas_weight": g.gas_weight,
        "completed_at": g.completed_at,
        "version": g.version,
        "created_at": g.created_at,
        "updated_at": g.updated_at,
        "progress": {
            "steps_total": total,
            "steps_done": done,
            "percent": percent(done, total),
            "latest_rating": g.latest_rating,
            "latest_gas_score": g.latest_gas_score,
        },
    }


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


def step_document(s: Any) -> dict[str, Any]:
    """A step row (Core row, ORM object or namespace) as the API shows it."""
    return {
        "id": s.id,
        "goal_id": s.goal_id,
        "title": s.title,
        "notes": s.notes,
        "status": s.status,
        "position": s.position,
        "due_date": s.due_date,
        "completed_at": s.completed_at,
        "created_by": s.created_by,
        "version": s.version,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }
