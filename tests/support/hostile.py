"""Hostile callers' tools: a world with one of everything, so every path parameter names a
real object, and the OpenAPI document read as an integrator's generator would (every body,
every text field, every list), so a new route or field is covered without being listed."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import sqlalchemy as sa

from app.models import metadata


async def build_world(client, make_user) -> dict[str, Any]:
    """A therapist linked with a client who has one of every object."""
    therapist = await make_user("therapist")
    patient = await make_user("client")
    code = (await client.post("/v1/care-invites", headers=therapist.headers)).json()["code"]
    link = await client.post("/v1/care-links", json={"code": code}, headers=patient.headers)
    assert link.status_code == 201, link.text
    goal = await client.post("/v1/goals", json={"title": "Walk"}, headers=patient.headers)
    assert goal.status_code == 201, goal.text
    goal_id = goal.json()["id"]
    step = await client.post(
        f"/v1/goals/{goal_id}/steps", json={"title": "Shoes"}, headers=patient.headers
    )
    review = await client.post(
        f"/v1/goals/{goal_id}/reviews", json={"rating": 5}, headers=patient.headers
    )
    note = await client.post(
        "/v1/encouragements",
        json={"client_id": patient.id, "message": "Well done"},
        headers=therapist.headers,
    )
    token = await client.post(
        "/v1/me/tokens", json={"name": "sync", "scopes": ["goals:read"]}, headers=patient.headers
    )
    webhook = await client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.com/waypoint", "events": ["goal.created"]},
        headers=patient.headers,
    )
    for r in (step, review, note, token, webhook):
        assert r.status_code == 201, r.text
    ids = {
        "goal_id": goal_id,
        "step_id": step.json()["id"],
        "review_id": review.json()["id"],
        "encouragement_id": note.json()["id"],
        "token_id": token.json()["id"],
        "link_id": link.json()["id"],
        "client_id": patient.id,
        "webhook_id": webhook.json()["id"],
    }
    return {"client": patient, "therapist": therapist, "ids": ids}


# --- the OpenAPI document, read as an integrator's generator would ---------------------------


def resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = document["components"]["schemas"][name]
    for key in ("anyOf", "oneOf"):  # `X | None`: the non-null branch
        if key in schema:
            branches = [resolve(document, s) for s in schema[key]]
            return next(b for b in branches if b.get("type") != "null")
    return schema


def text_paths(document: dict, schema: dict, prefix: tuple = ()) -> list[tuple]:
    """Every place in a body where a string goes, as a path of keys (``[0]`` for arrays)."""
    schema = resolve(document, schema)
    kind = schema.get("type")
    if kind == "string":
        return [prefix]
    if kind == "array":
        return text_paths(document, schema["items"], (*prefix, 0))
    found: list[tuple] = []
    for name, sub in schema.get("properties", {}).items():
        found += text_paths(document, sub, (*prefix, name))
    return found


def example(document: dict, schema: dict, name: str, ids: dict[str, str]) -> Any:
    """A valid value, so that the hostile field is the only thing wrong with the body."""
    schema = resolve(document, schema)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "uuid":
            return ids.get(name, ids["goal_id"])
        if schema.get("format") == "email":
            return "someone.new@example.com"
        if schema.get("format") == "date":
            return "2030-01-01"
        return "x" * max(schema.get("minLength", 1), 12 if name == "password" else 1)
    if kind == "integer":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return [example(document, schema["items"], name, ids)]
    return {
        key: example(document, sub, key, ids)
        for key, sub in schema.get("properties", {}).items()
        if key in schema.get("required", [])
    }


def full_object(document: dict, schema: dict, ids: dict[str, str]) -> dict:
    """Every property of an object (nested objects such as ``gas_levels`` need all theirs)."""
    schema = resolve(document, schema)
    return {k: example(document, s, k, ids) for k, s in schema.get("properties", {}).items()}


def with_value(document: dict, schema: dict, body: Any, path: tuple, value: str) -> Any:
    if not path:
        return value
    schema = resolve(document, schema)
    head, rest = path[0], path[1:]
    if head == 0:
        return [with_value(document, schema["items"], None, rest, value)]
    sub = schema["properties"][head]
    inner = (body or {}).get(head)
    if rest and not isinstance(inner, dict | list):
        inner = full_object(document, sub, {}) if rest[0] != 0 else None
    return {**(body or {}), head: with_value(document, sub, inner, rest, value)}


def json_operations(document: dict) -> list[tuple[str, str, dict]]:
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                found.append((method, path, operation))
    return found


def caller_for(world: dict, operation: dict) -> dict[str, str]:
    scopes = [s for req in operation.get("security", []) for s in req.get("OAuth2PasswordBearer")]
    if not operation.get("security"):
        return {}
    return (world["therapist"] if "therapist" in scopes else world["client"]).headers


def row_counts(sync_engine) -> dict[str, int]:
    with sync_engine.connect() as conn:
        return {
            t.name: conn.scalar(sa.select(sa.func.count()).select_from(t))
            for t in metadata.sorted_tables
        }


def fill_path(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, path
    return path


def list_urls(document: dict, ids: dict[str, str]) -> list[tuple[str, dict]]:
    found = []
    for path, item in document["paths"].items():
        operation = item.get("get")
        if operation and any(p["name"] == "cursor" for p in operation.get("parameters", [])):
            found.append((fill_path(path, ids), operation))
    return found


def b64(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()
