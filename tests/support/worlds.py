"""Who calls and what they find: the callers, the shared world of every authorization matrix,
and the request helpers test modules build their cases with.

Test modules import from here and the other ``tests/support`` modules (fixtures come from
``conftest`` by name, never by import), never from each other.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import sqlalchemy as sa

from app.models import Goal

PASSWORD = "correct horse battery"
# A complete set of Goal Attainment Scaling levels, as a client would write them.
GAS = {"-2": "stays home", "-1": "one walk", "0": "three walks", "1": "five walks", "2": "daily"}
ANONYMOUS: dict[str, str] = {}


@dataclass
class Actor:
    """Someone calling the API: a registered account with a password-login token."""

    id: str
    email: str
    role: str
    display_name: str
    access_token: str
    refresh_token: str
    scope: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, scope: str | None = None
) -> httpx.Response:
    form = {"grant_type": "password", "username": email, "password": password}
    if scope is not None:
        form["scope"] = scope
    return await client.post("/v1/auth/token", data=form)


async def scoped_headers(client: httpx.AsyncClient, actor: Actor, scope: str) -> dict[str, str]:
    """The actor again, with a token limited to ``scope``."""
    r = await login(client, actor.email, scope=scope)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def assert_problem(response: httpx.Response, status: int, slug: str | None = None) -> dict:
    """The response is RFC 9457 problem+json with the given status (and type slug)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert isinstance(body["title"], str) and body["title"]
    if slug is not None:
        assert body["type"] == f"/problems/{slug}", body
    return body


# The callers of every authorization matrix: the client who owns the data, their linked
# therapist, a therapist they are not linked with, another client, nobody, and the owner (or
# the therapist) with a token lacking the scope the route needs.
CALLERS = ("owner", "therapist", "unlinked_therapist", "other_client", "anonymous", "no_scope")


def caller_matrix(allowed: int) -> list[tuple[str, int]]:
    """The seven callers of every goal-scoped endpoint and the status each one gets: the owner
    and a linked therapist on a shared goal are ``allowed``; everyone else may not see it."""
    return [
        ("owner", allowed),
        ("therapist_shared", allowed),
        ("therapist_private", 404),
        ("unlinked_therapist", 404),
        ("other_client", 404),
        ("anonymous", 401),
        ("no_scope", 403),
    ]


def caller_statuses(allowed: int, goal: str) -> dict[str, int]:
    """``caller_matrix`` for a route on one goal (``"shared"`` or ``"private"``): the status
    each of ``CALLERS`` gets."""
    matrix = dict(caller_matrix(allowed))
    therapist = matrix.pop(f"therapist_{goal}")
    matrix.pop("therapist_shared", None)
    matrix.pop("therapist_private", None)
    return {"therapist": therapist, **matrix}


@dataclass
class World:
    """A client with a shared and a private goal, their linked therapist, and people who are
    neither: everyone an authorization matrix asks."""

    owner: Actor
    therapist: Actor
    stranger_therapist: Actor
    other_client: Actor
    shared: dict
    private: dict
    care_link: dict

    def headers_for(self, who: str, lacking: dict[str, str] | None = None) -> dict[str, str]:
        """Headers of a caller of ``CALLERS`` or ``caller_matrix``; ``lacking`` is the token
        without the route's scope that ``no_scope`` calls with."""
        return {
            "owner": self.owner.headers,
            "therapist": self.therapist.headers,
            "therapist_shared": self.therapist.headers,
            "therapist_private": self.therapist.headers,
            "unlinked_therapist": self.stranger_therapist.headers,
            "other_client": self.other_client.headers,
            "anonymous": ANONYMOUS,
            "no_scope": lacking or {},
        }[who]

    def goal_for(self, who: str) -> dict:
        """The goal a caller of ``caller_matrix`` is asked about."""
        return self.private if who == "therapist_private" else self.shared


async def make_world(client: httpx.AsyncClient, make_user: Any, *, timezone: str = "UTC") -> World:
    owner = await make_user("client", timezone=timezone)
    therapist = await make_user("therapist")
    care_link = await link(client, therapist, owner)
    shared = await new_goal(client, owner, title="shared", review_every_days=7)
    private = await new_goal(client, owner, title="private", visibility="private")
    return World(
        owner=owner,
        therapist=therapist,
        stranger_therapist=await make_user("therapist"),
        other_client=await make_user("client"),
        shared=shared,
        private=private,
        care_link=care_link,
    )


async def invite(client: httpx.AsyncClient, therapist: Actor) -> str:
    """A fresh care invite code of the therapist."""
    r = await client.post("/v1/care-invites", headers=therapist.headers)
    assert r.status_code == 201, r.text
    return r.json()["code"]


async def link(client: httpx.AsyncClient, therapist: Actor, patient: Actor) -> dict:
    """Link the client to the therapist; the care link's document."""
    code = await invite(client, therapist)
    r = await client.post("/v1/care-links", json={"code": code}, headers=patient.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def new_goal(client: httpx.AsyncClient, actor: Actor, **fields: Any) -> dict:
    r = await client.post("/v1/goals", json={"title": "Walk", **fields}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def goal_of(client: httpx.AsyncClient, actor: Actor, goal_id: str) -> dict:
    return (await client.get(f"/v1/goals/{goal_id}", headers=actor.headers)).json()


async def add_step(
    client: httpx.AsyncClient, actor: Actor, goal_id: str, title: str = "step", **fields: Any
) -> dict:
    r = await client.post(
        f"/v1/goals/{goal_id}/steps", json={"title": title, **fields}, headers=actor.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def set_due(engine: sa.Engine, goal_id: str, day: dt.date | None, **values: Any) -> None:
    """Move a goal's next review (and other columns) behind the API's back."""
    goals = Goal.__table__
    with engine.begin() as conn:
        conn.execute(
            goals.update()
            .where(goals.c.id == uuid.UUID(goal_id))
            .values(next_review_due=day, **values)
        )


def celebrations(engine: sa.Engine) -> list[str]:
    """The messages of the celebrations written so far, oldest first."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT message FROM encouragements WHERE kind = 'celebration' "
                    "AND author_id IS NULL ORDER BY created_at"
                )
            ).scalars()
        )
