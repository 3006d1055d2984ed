"""Helpers for the sync tests: a follower's mirror, and what the lists show a caller."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx

Mirror = dict[tuple[str, str], dict[str, Any]]


async def link(client: httpx.AsyncClient, therapist: Any, patient: Any) -> dict:
    code = (await client.post("/v1/care-invites", headers=therapist.headers)).json()["code"]
    r = await client.post("/v1/care-links", json={"code": code}, headers=patient.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def follow(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    mirror: Mirror,
    cursor: str | None,
    limit: int = 500,
) -> str:
    """Page until ``has_more`` is false, applying each entry to ``mirror``; the last cursor."""
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        r = await client.get("/v1/sync", params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        seqs = [change["seq"] for change in page["changes"]]
        assert seqs == sorted(seqs)
        apply(mirror, page["changes"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return cursor


def apply(mirror: Mirror, changes: list[dict[str, Any]]) -> None:
    for change in changes:
        key = (change["type"], change["id"])
        if change["op"] == "upsert":
            assert change["data"]["id"] == change["id"]
            mirror[key] = change["data"]
        else:
            assert change["data"] is None
            mirror.pop(key, None)


async def _pages(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> list[dict]:
    items: list[dict] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(path, params=params, headers=headers)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return items


async def listed(
    client: httpx.AsyncClient, headers: dict[str, str], types: tuple[str, ...] = ()
) -> Mirror:
    """Everything the lists show this caller, keyed like a mirror."""
    types = types or ("goal", "step", "review", "encouragement")
    seen: Mirror = {}
    goals = (
        await _pages(client, "/v1/goals", headers)
        if {"goal", "step", "review"} & set(types)
        else []
    )
    for goal in goals:
        if "goal" in types:
            seen[("goal", goal["id"])] = goal
        if "step" in types:
            for step in await _pages(client, f"/v1/goals/{goal['id']}/steps", headers):
                seen[("step", step["id"])] = step
        if "review" in types:
            for review in await _pages(client, f"/v1/goals/{goal['id']}/reviews", headers):
                seen[("review", review["id"])] = review
    if "encouragement" in types:
        for note in await _pages(client, "/v1/encouragements", headers):
            seen[("encouragement", note["id"])] = note
    return seen


async def register(client: httpx.AsyncClient, role: str, n: str, scope: str | None = None) -> Any:
    """A new account and its password-login token (for tests against a live server)."""
    from types import SimpleNamespace

    email = f"{role}-{n}@example.com"
    r = await client.post(
        "/v1/auth/register",
        json={"email": email, "password": "correct horse battery", "display_name": n,
              "role": role},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    form = {"grant_type": "password", "username": email, "password": "correct horse battery"}
    if scope:
        form["scope"] = scope
    t = await client.post("/v1/auth/token", data=form)
    assert t.status_code == 200, t.text
    token = t.json()["access_token"]
    return SimpleNamespace(
        id=r.json()["id"], email=email, token=token,
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip


def mirrored(path: Path) -> Mirror:
    """What a ``waypoint sync`` mirror file holds, keyed like ``listed``."""
    db = sqlite3.connect(path)
    try:
        return {
            (kind, row_id): json.loads(data)
            for kind, table in (("goal", "goals"), ("step", "steps"), ("review", "reviews"),
                                ("encouragement", "encouragements"))
            for row_id, data in db.execute(f"SELECT id, data FROM {table}")
        }  # fmt: skip
    finally:
        db.close()
